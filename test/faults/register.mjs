// Lets plain `node` run the fault-injection harness from its TypeScript sources (and the service's
// `src/` modules it imports), compiled on the fly by SWC with the same options as jest:
//   node --import ./test/faults/register.mjs test/faults/run.ts
import { register } from 'node:module';

register('./ts-hooks.mjs', import.meta.url);
