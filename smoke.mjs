import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
const nc = await connect({ servers: 'nats://127.0.0.1:14222' });
const js = jetstream(nc);
const now = new Date().toISOString();
const id = 'smoke-' + Date.now();
await js.publish('signals.enriched.momentum', JSON.stringify({ corr_id: id, agent_name: 'momentum', confidence: 0.9, timestamp: now, analysis: { trend_direction: 'bullish', momentum_strength: 0.8 } }));
await js.publish('signals.normalized', JSON.stringify({ corr_id: id, instrument: 'EURUSD', side: 'buy', strength: 0.8, price: 1.1, normalized_at: now }));
await js.publish('signals.enriched.risk', JSON.stringify({ corr_id: id, agent_name: 'risk', confidence: 0.8, timestamp: now, analysis: { risk_level: 'low', max_position_size: 100000 } }));
await js.publish('signals.normalized', 'not json');
await js.publish('signals.normalized', JSON.stringify({ corr_id: 'bad id!', side: 'buy', strength: 1 }));
await js.publish('signals.normalized', JSON.stringify({ corr_id: id + '-t', instrument: 'EURUSD', side: 'buy', strength: 0.8, timeout_seconds: 1 }));
await new Promise(r => setTimeout(r, 2500));
const jsm = await jetstreamManager(nc);
for (const s of ['DECISIONS', 'DEADLETTER']) {
  const c = await js.consumers.get(s);
  const msgs = await c.fetch({ max_messages: 20, expires: 1000 });
  for await (const m of msgs) { console.log(s, m.subject, m.headers ? [...m.headers].map(([k,v])=>k+'='+v).join(' | ') : '', m.string().slice(0, 400)); }
}
const r = await fetch('http://127.0.0.1:19090/workflows/' + id); console.log(r.status, (await r.text()).slice(0, 300));
console.log(await (await fetch('http://127.0.0.1:19090/health')).text());
console.log(await (await fetch('http://127.0.0.1:19090/health/ready')).text());
const m = await (await fetch('http://127.0.0.1:19090/metrics')).text(); console.log(m.split('\n').filter(l => l.startsWith('meta_agent') && !l.includes('_bucket')).join('\n'));
await nc.drain();
