// Copies the assets nest-cli.json lists (the Lua scripts, the workflows file's JSON Schema) from src/ next to
// the compiled JavaScript in dist/: tsc only emits .js. `npm run build` is tsc + this (docs/ARCHITECTURE.md,
// "Choices": the Nest CLI's build measured slower); `npm run start:dev` (`nest start --watch`) copies the same
// list itself, so there is one list.
import { cpSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = JSON.parse(readFileSync(join(root, 'nest-cli.json'), 'utf8'));
const sourceRoot = join(root, cli.sourceRoot);

/** The globs nest-cli.json's assets use: `**` any folders, `*` any characters within a name. */
function matcher(glob) {
  const pattern = glob
    .split('/')
    .map((part) => (part === '**' ? '(?:[^/]+/)*' : `${part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}/`))
    .join('');
  return new RegExp(`^${pattern.slice(0, -1)}$`);
}

const files = readdirSync(sourceRoot, { recursive: true, withFileTypes: true })
  .filter((entry) => entry.isFile())
  .map((entry) =>
    join(entry.parentPath, entry.name)
      .slice(sourceRoot.length + 1)
      .split('\\')
      .join('/'),
  );
for (const asset of cli.compilerOptions.assets) {
  const matches = matcher(asset.include);
  const selected = files.filter((file) => matches.test(file));
  if (selected.length === 0) throw new Error(`copy-assets: nothing matches ${asset.include} in ${cli.sourceRoot}/`);
  for (const file of selected) cpSync(join(sourceRoot, file), join(root, asset.outDir, file));
}
