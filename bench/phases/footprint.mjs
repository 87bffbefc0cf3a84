// Footprint: Redis bytes per workflow, and the service's RSS as active workflows grow. Part of `npm run bench` (bench/run.mjs, bench/README.md).
import { jsm, log, publishBacklog, redis, redisMemory, resetStreams, serviceMetrics, settings, SIZES, startService, waitDecisions } from '../context.mjs';
import { metricSum, round1, round3, rssBytes, sleep, streamCount, STREAMS, waitConsumersIdle } from '../lib.mjs';

/** Bytes in Redis per workflow, and the service's RSS as active workflows grow from 0 to the total. */
export async function phaseFootprint() {
  await redis.flushall();
  await resetStreams();
  // --expose-gc and a SIGUSR2 handler (bench/gc-on-signal.mjs): memory is read after a full GC as well.
  const child = await startService('fp', { nodeFlags: ['--expose-gc', '--import', './bench/gc-on-signal.mjs'] });
  const result = { rss: [] };
  const rss = async (label, active) => {
    await sleep(2000); // let in-flight work and timers settle
    const mb = (bytes) => round1(bytes / 2 ** 20);
    const heap = async () => {
      const m = await serviceMetrics(child);
      return {
        active: metricSum(m, 'meta_agent_active_workflows'),
        used: mb(metricSum(m, 'nodejs_heap_size_used_bytes')),
        total: mb(metricSum(m, 'nodejs_heap_size_total_bytes')),
      };
    };
    const before = await heap();
    const rssBefore = mb(rssBytes(child.pid));
    const gcDone = child.waitLine((l) => l.includes('"bench":"gc done"'), 10000, 'gc done line');
    child.proc.kill('SIGUSR2');
    await gcDone;
    await sleep(500);
    const after = await heap();
    const sample = {
      label,
      active_workflows: active,
      active_in_redis: after.active,
      rss_mb: mb(rssBytes(child.pid)),
      heap_used_mb: after.used,
      heap_total_mb: after.total,
      before_gc: { rss_mb: rssBefore, heap_used_mb: before.used, heap_total_mb: before.total },
    };
    result.rss.push(sample);
    log(
      `footprint: at ${active} active workflows (${label}): RSS ${sample.rss_mb} MB, heap used ${sample.heap_used_mb} MB after a full GC (before it: RSS ${rssBefore} MB, heap used ${before.used} MB)`,
    );
  };
  let seq = 0;
  const ingest = async (n, options, expectDecisions) => {
    const before = await streamCount(jsm, STREAMS.decisions);
    const { messages } = await publishBacklog(`fp${seq++}-${Date.now().toString(36)}`, n, 11 + seq, options);
    if (expectDecisions && !(await waitDecisions(before + n, Math.max(120000, n * 20), { children: [child] }))) throw new Error('footprint: decisions missing');
    if (!(await waitConsumersIdle(jsm, STREAMS.signals, child.consumers, Math.max(120000, messages * 10))))
      throw new Error('footprint: the service did not finish the messages');
  };
  const perWorkflow = async (label, n, options, expectDecisions, keyKinds) => {
    const before = await redisMemory();
    const keysBefore = await redis.dbsize();
    await ingest(n, options, expectDecisions);
    await sleep(500);
    const after = await redisMemory();
    const sample = {};
    for (const kind of keyKinds) {
      const keys = [];
      let cursor = '0';
      do {
        const [next, batch] = await redis.scan(cursor, 'MATCH', `{ma:*}:${kind}:*`, 'COUNT', 1000);
        cursor = next;
        keys.push(...batch);
      } while (cursor !== '0' && keys.length < 200);
      let total = 0;
      const used = keys.slice(0, 200);
      for (const k of used) total += Number(await redis.memory('USAGE', k, 'SAMPLES', 0));
      sample[`${kind}_key_bytes_avg`] = used.length ? Math.round(total / used.length) : null;
    }
    const r = {
      workflows: n,
      bytes_per_workflow: Math.round((after - before) / n),
      keys_per_workflow: round3(((await redis.dbsize()) - keysBefore) / n),
      memory_usage_sample: sample,
    };
    log(`footprint: ${label}: ${r.bytes_per_workflow} bytes/workflow in Redis (used_memory delta; ${JSON.stringify(sample)})`);
    return r;
  };
  try {
    await ingest(Math.min(2000, SIZES.finished), { kinds: ['fx'] }, true); // warm-up
    await redis.flushall();
    result.finished = await perWorkflow(`finished (completed, kept ${settings.workflow.retentionSeconds} s)`, SIZES.finished, { kinds: ['fx'] }, true, [
      'wf',
      'sig',
    ]);
    await redis.flushall();
    await rss('0 active, after warm-up and the finished workflows', 0);
    result.active_2_signals = await perWorkflow(
      'active with 2 signals (crypto: waits for sentiment)',
      SIZES.active,
      { kinds: ['crypto'], agents: ['momentum', 'risk'], extra: { timeout_seconds: 3600 } },
      false,
      ['wf', 'sig'],
    );
    await rss('active with 2 signals', SIZES.active);
    result.active_trigger_only = await perWorkflow(
      'active, trigger only',
      SIZES.activeTotal - SIZES.active,
      { kinds: ['crypto'], agents: [], extra: { timeout_seconds: 3600 } },
      false,
      ['wf'],
    );
    await rss('plus trigger-only workflows', SIZES.activeTotal);
    await redis.flushall();
    await rss('0 active again (Redis flushed after the run)', 0);
    // The same 2-signal workflows with Redis's default hash encoding threshold (64 bytes: every workflow hash
    // is a hash table) instead of the recommended 4096 the servers run with (docs/OPERATIONS.md "Redis").
    const [, configured] = await redis.config('GET', 'hash-max-listpack-value');
    result.hash_max_listpack_value = Number(configured);
    await redis.config('SET', 'hash-max-listpack-value', '64');
    try {
      result.active_2_signals_default_encoding = await perWorkflow(
        'active with 2 signals, Redis default hash-max-listpack-value 64',
        SIZES.active,
        { kinds: ['crypto'], agents: ['momentum', 'risk'], extra: { timeout_seconds: 3600 } },
        false,
        ['wf', 'sig'],
      );
    } finally {
      await redis.config('SET', 'hash-max-listpack-value', String(configured));
      await redis.flushall();
    }
    const values = result.rss.slice(0, 3).map((s) => s.rss_mb);
    result.rss_growth_0_to_max = round3(values[2] / values[0]);
    return result;
  } finally {
    await child.stop();
  }
}
