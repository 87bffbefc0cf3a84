// The timeout target's reference: de-duplicated JetStream publishes acknowledged per second by one process. Part of `npm run bench` (bench/run.mjs, bench/README.md).
import { jsm, log, resetStreams, SIZES } from '../context.mjs';
import { Child, CpuMeter, deleteStream, median, NATS_URL, round1, round3, streamCount, STREAMS } from '../lib.mjs';

/** The size of a timeout decision of the trading strategy (about 440 B: `decision_bytes_avg` of the timeouts phase). */
const DECISION_BYTES = 450;

/**
 * The reference of the timeout target (issue 11): the rate at which one process of this machine gets
 * de-duplicated JetStream publishes acknowledged (`bench/js-publish.mjs`: a unique msgID each, at most
 * `window` in flight) on a stream with the decisions stream's configuration (duplicate window included).
 * Windows 16 / 64 / 256 / 1024, with the client's `js.publish` and with the service's JetStreamPublisher,
 * alternating order per round; the best (client, window)'s median is the reference.
 */
export async function phasePublish() {
  await resetStreams();
  const name = 'BENCH_DEDUP';
  const subject = 'bench.dedup';
  const { config } = await jsm.streams.info(STREAMS.decisions);
  const copy = { ...config, name, subjects: [subject] };
  delete copy.metadata;
  await deleteStream(jsm, name);
  await jsm.streams.add(copy);
  // Issue 11 names 64 / 256 / 1024; 16 as well, since the smallest window measured so far was the fastest.
  const windows = [16, 64, 256, 1024];
  const variants = ['js', 'service'].flatMap((client) => windows.map((window) => ({ client, window })));
  const runs = [];
  try {
    for (let r = 0; r < SIZES.publishRounds; r++) {
      for (const { client, window } of r % 2 === 0 ? variants : [...variants].reverse()) {
        await jsm.streams.purge(name);
        const child = new Child(`js-publish ${client} w${window} r${r}`, ['bench/js-publish.mjs'], {
          PUB_CLIENT: client,
          BENCH_NATS_URL: NATS_URL,
          PUB_SUBJECT: subject,
          PUB_COUNT: String(SIZES.publishCount),
          PUB_WINDOW: String(window),
          PUB_BYTES: String(DECISION_BYTES),
          PUB_TAG: `${client}w${window}r${r}`,
        });
        try {
          const meter = new CpuMeter({ process: child.pid });
          const line = await child.waitLine((l) => l.startsWith('RESULT '), 180000, 'RESULT line');
          const cpu = meter.stop();
          const res = JSON.parse(line.slice(7));
          const seconds = (res.last_ms - res.first_ms) / 1000;
          const stored = await streamCount(jsm, name);
          const run = {
            client,
            window,
            round: r,
            publishes: res.count,
            seconds: round3(seconds),
            acked_per_s: Math.round(res.count / seconds),
            duplicates: res.duplicates,
            stored,
            publisher_cpu_us_per_publish: round1((res.cpu_ms * 1000) / res.count),
            nats_cpu_us_per_publish: round1((cpu.nats_cpu_s * 1e6) / res.count),
            cpu,
          };
          runs.push(run);
          log(
            `publish ${client.padEnd(7)} window ${String(window).padStart(4)} round ${r}: ${run.acked_per_s} de-duplicated publishes acked/s (${res.count} in ${run.seconds} s; ${res.duplicates} duplicates)`,
          );
        } finally {
          await child.stop();
        }
      }
    }
  } finally {
    await deleteStream(jsm, name);
  }
  const perWindow = variants.map(({ client, window }) => ({
    client,
    window,
    acked_per_s: Math.round(median(runs.filter((x) => x.client === client && x.window === window).map((x) => x.acked_per_s))),
  }));
  const best = perWindow.reduce((a, b) => (b.acked_per_s > a.acked_per_s ? b : a));
  return {
    stream: { duplicate_window_ms: Math.round((config.duplicate_window ?? 0) / 1e6), storage: config.storage, like: STREAMS.decisions },
    payload_bytes: DECISION_BYTES,
    publishes_per_run: SIZES.publishCount,
    per_window: perWindow,
    best_window: best.window,
    best_client: best.client,
    acked_per_s: best.acked_per_s,
    runs,
  };
}
