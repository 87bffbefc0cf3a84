// Module hooks for register.mjs: `.ts` files are compiled by SWC (legacy decorators with metadata,
// as Nest needs), and a relative `./x.js` import from a `.ts` file finds `./x.ts` (the project's ESM
// convention), as jest's moduleNameMapper does.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import swc from '@swc/core';
import { swcOptions } from '../../swc.options.js';

export async function resolve(specifier, context, nextResolve) {
  const parent = context.parentURL;
  if (parent && parent.endsWith('.ts') && /^\.\.?\//.test(specifier) && specifier.endsWith('.js')) {
    const asJs = new URL(specifier, parent);
    if (!existsSync(fileURLToPath(asJs))) {
      const asTs = new URL(specifier.slice(0, -3) + '.ts', parent);
      if (existsSync(fileURLToPath(asTs))) return { url: asTs.href, format: 'module', shortCircuit: true };
    }
  }
  return nextResolve(specifier, context);
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const filename = fileURLToPath(url);
  const { code } = swc.transformSync(readFileSync(filename, 'utf8'), { ...swcOptions, filename });
  return { format: 'module', source: code, shortCircuit: true };
}
