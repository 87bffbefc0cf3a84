import { jest } from '@jest/globals';
import { BackpressureError, BadInputError, TransientError } from '../../common/errors.js';
import { backoff, settle } from './settlement.js';

const options = { maxDeliveries: 5, nakDelayMs: 500, nakMaxDelayMs: 30000 };

describe('settle', () => {
  it('acks a message whose handler stored its effect, without reading its delivery count', () => {
    const deliveryCount = jest.fn(() => 1);
    expect(settle({ ok: true }, deliveryCount, options)).toEqual({ action: 'ack' });
    expect(deliveryCount).not.toHaveBeenCalled();
  });

  it('dead-letters bad input at once, with its code, whatever the delivery count', () => {
    const s = settle({ ok: false, error: new BadInputError('invalid_json', 'payload is not JSON') }, () => 1, options);
    expect(s).toEqual({ action: 'dead-letter', code: 'invalid_json', reason: 'invalid_json: payload is not JSON' });
  });

  it('naks a transient failure with a growing delay', () => {
    const error = new TransientError('redis down');
    expect(settle({ ok: false, error }, () => 1, options)).toMatchObject({ action: 'nak', delayMs: 500 });
    expect(settle({ ok: false, error }, () => 2, options)).toMatchObject({ action: 'nak', delayMs: 1000 });
    expect(settle({ ok: false, error }, () => 4, options)).toMatchObject({ action: 'nak', delayMs: 4000 });
  });

  it('treats an unknown error as transient: a bug never drops a message', () => {
    expect(settle({ ok: false, error: new TypeError('x is undefined') }, () => 1, options)).toMatchObject({ action: 'nak' });
    expect(settle({ ok: false, error: 'a string' }, () => 1, options)).toMatchObject({ action: 'nak' });
  });

  it('dead-letters a transient failure on the last delivery, keeping the last error', () => {
    const s = settle({ ok: false, error: new TransientError('redis down') }, () => 5, options);
    expect(s).toMatchObject({ action: 'dead-letter', code: 'max_deliveries' });
    expect(s.action === 'dead-letter' && s.reason).toContain('redis down');
  });

  it('never dead-letters back-pressure, however often it was delivered', () => {
    const s = settle({ ok: false, error: new BackpressureError('full') }, () => 99, options);
    expect(s).toMatchObject({ action: 'nak', delayMs: 2000 });
  });
});

describe('backoff', () => {
  it('doubles from the base and stops at the cap', () => {
    expect([1, 2, 3, 7, 8, 50].map((n) => backoff(n, options))).toEqual([500, 1000, 2000, 30000, 30000, 30000]);
  });
});
