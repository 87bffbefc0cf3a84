import { ConfigValidationError, EnvReader, redactUrl } from './env-reader.js';

describe('EnvReader', () => {
  it('notes every setting it reads, with its default as written in the environment', () => {
    const r = new EnvReader({ META_AGENT_N: '7' });
    expect(r.int('N', 3, 1, 10, 'A number.')).toBe(7);
    expect(r.list('L', ['a', 'b'], /^[a-z]$/, 'A list.')).toEqual(['a', 'b']);
    expect(r.secret('S', 'A secret.')).toBeUndefined();
    expect(r.docs).toEqual([
      { variable: 'META_AGENT_N', default: '3', doc: 'A number.' },
      { variable: 'META_AGENT_L', default: 'a,b', doc: 'A list.' },
      { variable: 'META_AGENT_S', default: '', doc: 'A secret. Secret: never logged.' },
      { variable: 'META_AGENT_S_FILE', default: '', doc: 'A file holding META_AGENT_S (instead of the variable).' },
    ]);
  });

  it('throws a ConfigValidationError naming the variable, on one line', () => {
    const r = new EnvReader({ META_AGENT_N: '11' });
    expect(() => r.int('N', 3, 1, 10, 'A number.')).toThrow(new ConfigValidationError('META_AGENT_N', '11 is outside 1..10'));
    expect(() => r.int('N', 3, 1, 10, 'A number.')).toThrow('invalid setting META_AGENT_N: 11 is outside 1..10');
  });
});

describe('redactUrl', () => {
  it('hides passwords and tokens, keeps the rest', () => {
    expect(redactUrl('redis://user:pw@h:6379/0')).toBe('redis://user:***@h:6379/0');
    expect(redactUrl('nats://token@h:4222,nats://h2:4222')).toBe('nats://***@h:4222,nats://h2:4222');
    expect(redactUrl('nats://h:4222')).toBe('nats://h:4222');
  });
});
