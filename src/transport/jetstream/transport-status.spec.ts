import { JetStreamApiCodes, JetStreamApiError, JetStreamError } from '@nats-io/jetstream';
import { JetStreamStatusError } from '@nats-io/jetstream/internal';
import { ProvisioningError } from './provisioning.js';
import { consumerGoneReason } from './transport-status.js';

const apiError = (err_code: number, description: string) => new JetStreamApiError({ code: 404, err_code, description });

describe('consumerGoneReason', () => {
  it.each([
    ['a pull ended by 409 Consumer Deleted', new JetStreamStatusError('consumer deleted', 409), 'consumer deleted'],
    ['a pull ended by 409 Stream Deleted', new JetStreamStatusError('stream deleted', 409), 'stream deleted'],
    ['a look-up: consumer not found', apiError(JetStreamApiCodes.ConsumerNotFound, 'consumer not found'), 'consumer not found'],
    ['a look-up: stream not found', apiError(JetStreamApiCodes.StreamNotFound, 'stream not found'), 'stream not found'],
    [
      'provisioning off, the consumer missing',
      new ProvisioningError('consumer c on stream SIGNALS does not exist and META_AGENT_PROVISION is off'),
      'consumer c on stream SIGNALS does not exist and META_AGENT_PROVISION is off',
    ],
  ])('%s: gone', (_what, error, reason) => {
    expect(consumerGoneReason(error)).toBe(reason);
  });

  it.each([
    ['no responders (JetStream away, or a pull on a missing consumer)', new JetStreamStatusError('no responders', 503)],
    ['missed heartbeats', new JetStreamStatusError('idle heartbeats missed', 409)],
    ['a 409 of another kind', new JetStreamStatusError('exceeded maxwaiting', 409)],
    ['heartbeats missed (client side)', new JetStreamError('heartbeats missed')],
    ['another API error', apiError(10008, 'jetstream system temporarily unavailable')],
    ['a timeout', new Error('TIMEOUT')],
    ['not an error', 'consumer deleted'],
  ])('%s: not gone', (_what, error) => {
    expect(consumerGoneReason(error)).toBeUndefined();
  });
});
