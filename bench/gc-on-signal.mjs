// Preloaded into the service by the footprint phase only (node --expose-gc --import ./bench/gc-on-signal.mjs
// dist/main.js): SIGUSR2 runs a full garbage collection, so that memory can be read on the live set rather
// than on whatever garbage the last burst of traffic left behind.
process.on('SIGUSR2', () => {
  globalThis.gc?.();
  process.stdout.write('{"bench":"gc done"}\n');
});
