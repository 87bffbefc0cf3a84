import { parseSettings } from '../config/env.schema.js';
import { natsSecurityOptions, splitNatsUrls } from './nats-connection.service.js';

describe('NATS connection options', () => {
  it('takes user and password out of the URL', () => {
    expect(splitNatsUrls('nats://u%40x:p%3Aw@h1:4222, nats://h2:4222')).toEqual({ servers: ['nats://h1:4222', 'nats://h2:4222'], user: 'u@x', pass: 'p:w' });
  });

  it('reads a lone user part as a token', () => {
    expect(splitNatsUrls('tls://s3cr3t@h:4222')).toEqual({ servers: ['tls://h:4222'], token: 's3cr3t' });
  });

  it('prefers explicit settings to URL credentials', () => {
    const nats = parseSettings({ META_AGENT_NATS_URL: 'nats://a:b@h:4222', META_AGENT_NATS_TOKEN: 'tok' }).nats;
    expect(natsSecurityOptions(nats)).toEqual({ servers: ['nats://h:4222'], token: 'tok' });
  });

  it('uses user/password settings', () => {
    const nats = parseSettings({ META_AGENT_NATS_USER: 'u', META_AGENT_NATS_PASSWORD: 'p' }).nats;
    expect(natsSecurityOptions(nats)).toMatchObject({ user: 'u', pass: 'p', servers: ['nats://localhost:4222'] });
  });

  it('builds an NKey authenticator from a seed', () => {
    const seed = 'SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU';
    const options = natsSecurityOptions(parseSettings({ META_AGENT_NATS_NKEY_SEED: seed }).nats);
    expect(typeof options.authenticator).toBe('function');
  });
});
