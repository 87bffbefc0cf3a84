// The transport alone against a raw consume-and-ack loop. Part of `npm run bench` (bench/run.mjs, bench/README.md).
import { jsm, log, MAX_IN_FLIGHT, SIZES } from '../context.mjs';
import { Child, CpuMeter, deleteConsumers, median, NATS_URL, round3, sides, STREAMS, waitConsumersIdle } from '../lib.mjs';

/** Transport alone vs raw consume-and-ack, on the same backlog (fresh durable consumers per run). */
export async function phaseTransport(totalMessages) {
  const runs = [];
  for (let r = 0; r < SIZES.transportRounds; r++) {
    for (const side of sides(r, 'raw', 'transport')) {
      const tag = `tr-${side}-${r}`;
      const env = { EXPECTED: String(totalMessages) };
      const child =
        side === 'raw'
          ? new Child(`raw-consume ${tag}`, ['bench/raw-consume.mjs'], {
              ...env,
              BENCH_NATS_URL: NATS_URL,
              RAW_NAME: tag,
              RAW_MAX_IN_FLIGHT: String(MAX_IN_FLIGHT),
            })
          : new Child(`transport ${tag}`, ['bench/transport-alone.mjs'], {
              ...env,
              META_AGENT_NATS_URL: NATS_URL,
              META_AGENT_LOG_LEVEL: 'warning',
              META_AGENT_TRIGGER_CONSUMER: `${tag}-trigger`,
              META_AGENT_ENRICHED_CONSUMER: `${tag}-enriched`,
            });
      try {
        const meter = new CpuMeter({ process: child.pid });
        const line = await child.waitLine((l) => l.startsWith('RESULT '), 120000, 'RESULT line');
        const cpu = meter.stop();
        const res = JSON.parse(line.slice(7));
        const acked = await waitConsumersIdle(jsm, STREAMS.signals, [`${tag}-trigger`, `${tag}-enriched`], 20000);
        const seconds = (res.last_ms - res.first_ms) / 1000;
        const run = {
          side,
          round: r,
          messages: res.count,
          seconds: round3(seconds),
          msgs_per_s: Math.round((res.count - 1) / seconds),
          cpu_us_per_msg: round3((res.cpu_ms * 1000) / res.count),
          all_acked: acked,
          cpu,
        };
        runs.push(run);
        log(
          `transport ${side.padEnd(9)} round ${r}: ${run.msgs_per_s} msg/s (${res.count} in ${run.seconds} s), ${run.cpu_us_per_msg} CPU µs/msg${acked ? '' : ' NOT ALL ACKED'}`,
        );
      } finally {
        await child.stop();
        await deleteConsumers(jsm, STREAMS.signals);
      }
    }
  }
  const raw = Math.round(median(runs.filter((x) => x.side === 'raw').map((x) => x.msgs_per_s)));
  const transport = Math.round(median(runs.filter((x) => x.side === 'transport').map((x) => x.msgs_per_s)));
  return { messages: totalMessages, raw_msgs_per_s: raw, transport_msgs_per_s: transport, ratio: round3(transport / raw), runs };
}
