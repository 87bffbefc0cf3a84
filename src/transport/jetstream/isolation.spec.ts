import { IsolationGate } from './isolation.js';

/** Lets every pending promise callback run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('IsolationGate', () => {
  it('lets first deliveries in side by side without a promise while no suspect waits', () => {
    const gate = new IsolationGate();
    expect(gate.tryShared()).toBe(true);
    expect(gate.tryShared()).toBe(true);
    expect(gate.isolating).toBe(false);
  });

  it('runs a suspect only once the messages in flight have left, and nothing else meanwhile', async () => {
    const changes: boolean[] = [];
    const gate = new IsolationGate((isolating) => changes.push(isolating));
    gate.tryShared();
    gate.tryShared();
    let alone = false;
    const suspect = gate.enterAlone().then(() => (alone = true));
    expect(changes).toEqual([true]);
    // A new message waits behind the suspect (writers first): a steady load cannot starve it.
    expect(gate.tryShared()).toBe(false);
    let lateIn = false;
    const late = gate.enterShared().then(() => (lateIn = true));
    gate.leaveShared();
    await settle();
    expect(alone).toBe(false);
    gate.leaveShared();
    await suspect;
    expect(alone).toBe(true);
    expect(lateIn).toBe(false);
    gate.leaveAlone();
    await late;
    expect(lateIn).toBe(true);
    expect(changes).toEqual([true, false]);
  });

  it('lets the messages that waited in before the next suspect, and that suspect in once they left', async () => {
    const gate = new IsolationGate();
    await gate.enterAlone();
    const order: string[] = [];
    const second = gate.enterAlone().then(() => order.push('suspect 2'));
    const waiting = gate.enterShared().then(() => order.push('shared'));
    gate.leaveAlone();
    await waiting;
    await settle();
    expect(order).toEqual(['shared']);
    expect(gate.isolating).toBe(true);
    gate.leaveShared();
    await second;
    expect(order).toEqual(['shared', 'suspect 2']);
  });

  it('a message parked (waiting for room or Redis) holds no place: a suspect runs meanwhile', async () => {
    const gate = new IsolationGate();
    gate.tryShared();
    // The transport's hold(): the parked message leaves the gate for the time it waits.
    gate.leaveShared();
    await gate.enterAlone();
    expect(gate.isolating).toBe(true);
    let back = false;
    const unparked = gate.enterShared().then(() => (back = true));
    await settle();
    expect(back).toBe(false);
    gate.leaveAlone();
    await unparked;
    expect(back).toBe(true);
    expect(gate.isolating).toBe(false);
  });
});
