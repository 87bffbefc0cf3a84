// The raw pipeline: the limit the orchestrator is measured against. A minimal consumer, in the same
// language, on the same servers, with the same client libraries and the same shape of concurrency as the
// service, that does only the work a correct orchestrator cannot avoid per message:
//
//   pull from JetStream (two durable consumers, triggers and agent signals, like the service)
//   -> JSON.parse (to find corr_id, agent and instrument)
//   -> ONE Redis script call (EVALSHA): store the message in the workflow's hash, answer "complete now?"
//      (trigger seen and every needed agent present; completes once: HSETNX)
//   -> on completion ONE JetStream publish of a small decision with Nats-Msg-Id = workflow id, awaited
//      (acking before the decision is stored in JetStream could lose it in a crash)
//   -> ack
//
// Bounded concurrency as in the service: at most MAX_IN_FLIGHT messages per consumer in flight, and the
// same number pulled ahead. What it does NOT do (and the service does): validation, strategy evaluation,
// claims and leases, deadline indexes, early-signal buffering, metrics, logs, a decision with its sources.
//
// On a Redis Cluster with a replication wait (the topologies bench), replication before the publish and the
// ack is work a correct orchestrator cannot avoid either: after its script, each message waits for
// RAW_WAIT_REPLICAS replicas of the primary that took the write, the waits of one event-loop turn sharing
// one WAIT per connection, as the service's do (src/redis/replica-wait.ts).
//
//   BENCH_NATS_URL (comma-separated for a cluster), BENCH_REDIS_URL, RAW_NAME (consumer name prefix),
//   RAW_MAX_IN_FLIGHT (64), RAW_REDIS_CLUSTER_NODES (host:port,...: a Redis Cluster instead of BENCH_REDIS_URL),
//   RAW_WAIT_REPLICAS (0: no wait), RAW_WAIT_TIMEOUT_MS (1000)
// Prints "raw-pipeline ready" once consuming; SIGTERM stops it (in-flight messages finish).
import { connect } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { setImmediate } from 'node:timers';
import { Cluster, Redis } from 'ioredis';
import { connectionFor } from '../dist/redis/redis-client.js';

const NATS_URL = process.env.BENCH_NATS_URL ?? 'nats://127.0.0.1:27222';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:27379';
const NAME = process.env.RAW_NAME ?? 'bench-raw';
const MAX_IN_FLIGHT = Number(process.env.RAW_MAX_IN_FLIGHT ?? 64);
const CLUSTER_NODES = process.env.RAW_REDIS_CLUSTER_NODES ?? '';
const WAIT_REPLICAS = Number(process.env.RAW_WAIT_REPLICAS ?? 0);
const WAIT_TIMEOUT_MS = Number(process.env.RAW_WAIT_TIMEOUT_MS ?? 1000);

// KEYS[1] the workflow's hash. ARGV[1] field: 'trigger' or the agent's name; ARGV[2] the message as
// received; ARGV[3] (trigger only) the agents needed, comma-separated. Returns 1 exactly once: when the
// trigger and every needed agent are present.
const STEP_LUA = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], '_need', ARGV[3]) end
local need = redis.call('HGET', KEYS[1], '_need')
if not need then return 0 end
for agent in string.gmatch(need, '[^,]+') do
  if redis.call('HEXISTS', KEYS[1], agent) == 0 then return 0 end
end
return redis.call('HSETNX', KEYS[1], '_done', 1)
`;

/** The trading rule's `canDecide` agents: momentum and risk, plus sentiment for crypto. */
const needFor = (instrument) => (typeof instrument === 'string' && instrument.startsWith('CRYPTO') ? 'momentum,risk,sentiment' : 'momentum,risk');

const nc = await connect({ servers: NATS_URL.split(','), name: NAME });
const js = jetstream(nc);
const jsm = await jetstreamManager(nc);
// The service's client options that matter for speed: auto-pipelining on.
const redis = CLUSTER_NODES
  ? new Cluster(
      CLUSTER_NODES.split(',').map((node) => ({ host: node.split(':')[0], port: Number(node.split(':')[1]) })),
      { enableAutoPipelining: true, redisOptions: { maxRetriesPerRequest: 1 } },
    )
  : new Redis(REDIS_URL, { enableAutoPipelining: true, maxRetriesPerRequest: 1 });
redis.defineCommand('step', { numberOfKeys: 1, lua: STEP_LUA });

/** Connections with writes answered this turn, and their waiters: one WAIT each at the end of the turn. */
let waits = new Map();
/** Resolves once WAIT_REPLICAS replicas hold the writes to `key` answered so far; rejects on a shortfall. */
function replicated(key) {
  const connection = connectionFor(redis, key);
  if (!connection) return Promise.reject(new Error(`no primary known for ${key}`));
  if (waits.size === 0) setImmediate(flushWaits);
  let list = waits.get(connection);
  if (!list) waits.set(connection, (list = []));
  return new Promise((resolve, reject) => list.push({ resolve, reject }));
}
function flushWaits() {
  const batch = waits;
  waits = new Map();
  for (const [connection, list] of batch) {
    connection.call('WAIT', WAIT_REPLICAS, WAIT_TIMEOUT_MS).then(
      (count) => {
        const error = Number(count) >= WAIT_REPLICAS ? null : new Error(`WAIT: ${count} of ${WAIT_REPLICAS} replicas`);
        for (const w of list) {
          if (error) w.reject(error);
          else w.resolve();
        }
      },
      (error) => list.forEach((w) => w.reject(error)),
    );
  }
}

const routes = [
  { durable: `${NAME}-trigger`, filter: 'signals.normalized', trigger: true },
  { durable: `${NAME}-enriched`, filter: 'signals.enriched.*', trigger: false },
];

let stopping = false;
const inFlight = new Set();
const subscriptions = [];

async function handle(route, msg) {
  try {
    const text = msg.string();
    const data = JSON.parse(text);
    const corr = data.corr_id;
    const field = route.trigger ? 'trigger' : data.agent_name;
    const need = route.trigger ? needFor(data.instrument) : '';
    const key = `raw:${corr}`;
    const complete = await redis.step(key, field, text, need);
    if (WAIT_REPLICAS > 0) await replicated(key);
    if (complete === 1) {
      const decision = {
        corr_id: corr,
        workflow_id: `trading:${corr}`,
        orchestrator: NAME,
        status: 'completed',
        decision: { action: 'decided' },
        orchestrated_at: new Date().toISOString(),
      };
      await js.publish('orchestrated.decision', JSON.stringify(decision), { msgID: decision.workflow_id });
    }
    msg.ack();
  } catch (error) {
    process.stderr.write(`raw-pipeline: ${error.message}\n`);
    msg.nak(500);
  }
}

async function consume(route) {
  // Same consumer configuration as the service provisions (src/transport/jetstream/provisioning.ts).
  await jsm.consumers.add('SIGNALS', {
    durable_name: route.durable,
    filter_subject: route.filter,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(30000),
    max_deliver: -1,
    max_ack_pending: Math.max(MAX_IN_FLIGHT * 16, 1000),
  });
  const consumer = await js.consumers.get('SIGNALS', route.durable);
  const messages = await consumer.consume({ max_messages: MAX_IN_FLIGHT });
  subscriptions.push(messages);
  return async () => {
    let used = 0;
    const waiters = [];
    for await (const msg of messages) {
      if (stopping) {
        msg.nak();
        continue;
      }
      if (used >= MAX_IN_FLIGHT) await new Promise((resolve) => waiters.push(resolve));
      else used++;
      const task = handle(route, msg).finally(() => {
        inFlight.delete(task);
        const next = waiters.shift();
        if (next) next();
        else used--;
      });
      inFlight.add(task);
    }
  };
}

const loops = [];
for (const route of routes) loops.push(await consume(route));
const running = loops.map((loop) => loop());
process.stdout.write('raw-pipeline ready\n');

process.once('SIGTERM', () => {
  stopping = true;
  for (const s of subscriptions) s.stop();
  void Promise.allSettled([...inFlight])
    .then(() => Promise.allSettled(running))
    .then(() => nc.drain())
    .then(() => redis.quit())
    .finally(() => process.exit(0));
});
