import { compareVersions, MIN_NATS_SERVER_VERSION, natsServerVersionProblem } from './server-version.js';

describe('nats-server version', () => {
  it('compares versions by their numbers, not as text', () => {
    expect(compareVersions('2.10.0', '2.9.10')).toBeGreaterThan(0);
    expect(compareVersions('2.9.10', '2.10.0')).toBeLessThan(0);
    expect(compareVersions('2.15.1', '2.10.27')).toBeGreaterThan(0);
    expect(compareVersions('3.0.0', '2.99.99')).toBeGreaterThan(0);
    expect(compareVersions('2.10.27', '2.10.27')).toBe(0);
    expect(compareVersions('v2.10', '2.10.0')).toBe(0);
  });

  it('ranks a pre-release below its release', () => {
    expect(compareVersions('2.10.0-RC.1', '2.10.0')).toBeLessThan(0);
    expect(compareVersions('2.10.0', '2.10.0-beta.2')).toBeGreaterThan(0);
    expect(compareVersions('2.10.1-beta', '2.10.0')).toBeGreaterThan(0);
  });

  it('does not compare what is not a version', () => {
    expect(compareVersions('unknown', '2.10.0')).toBeUndefined();
    expect(compareVersions('2.10.0', '')).toBeUndefined();
  });

  it('requires 2.10 or newer', () => {
    expect(MIN_NATS_SERVER_VERSION).toBe('2.10.0');
    expect(natsServerVersionProblem('2.9.10')).toBe('nats-server 2.9.10 is too old: 2.10.0 or newer is required');
    expect(natsServerVersionProblem('2.2.0')).toBe('nats-server 2.2.0 is too old: 2.10.0 or newer is required');
    expect(natsServerVersionProblem('2.10.0-RC.3')).toBe('nats-server 2.10.0-RC.3 is too old: 2.10.0 or newer is required');
    expect(natsServerVersionProblem('2.10.0')).toBeUndefined();
    expect(natsServerVersionProblem('2.10.27')).toBeUndefined();
    expect(natsServerVersionProblem('2.15.1')).toBeUndefined();
  });

  it('lets a server through that reported no readable version', () => {
    expect(natsServerVersionProblem(undefined)).toBeUndefined();
    expect(natsServerVersionProblem('dev')).toBeUndefined();
  });

  it('takes another minimum', () => {
    expect(natsServerVersionProblem('2.10.27', '2.11.0')).toBe('nats-server 2.10.27 is too old: 2.11.0 or newer is required');
  });
});
