// Copies the Lua scripts and the workflows file's JSON Schema next to the compiled JavaScript (tsc only emits .js).
import { cpSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
mkdirSync(join(root, 'dist/redis/lua'), { recursive: true });
cpSync(join(root, 'src/redis/lua'), join(root, 'dist/redis/lua'), { recursive: true });
mkdirSync(join(root, 'dist/workflow/strategies/declarative'), { recursive: true });
cpSync(join(root, 'src/workflow/strategies/declarative/workflows.schema.json'), join(root, 'dist/workflow/strategies/declarative/workflows.schema.json'));
