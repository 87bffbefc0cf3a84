import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WORKFLOW_TYPE } from '../../common/names.js';

/*
 * `npm run new:strategy -- <type>` (scripts/new-strategy.mjs), run on a copy of src/ in a temporary directory:
 * the generated provider and module compile under the project's strict tsconfig, and the generated spec passes
 * under jest as this project runs it. Nothing is written to this repository.
 */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const STRATEGIES = 'src/workflow/strategies';
let dir: string;

function run(command: string, args: string[], cwd = dir): SpawnSyncReturns<string> {
  return spawnSync(command, args, { cwd, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' }, timeout: 120000 });
}
const generate = (...args: string[]) => run(process.execPath, [join(ROOT, 'scripts/new-strategy.mjs'), ...args, '--root', dir]);
const read = (file: string) => readFileSync(join(dir, STRATEGIES, file), 'utf8');

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'new-strategy-'));
  cpSync(join(ROOT, 'src'), join(dir, 'src'), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      extends: join(ROOT, 'tsconfig.json'),
      compilerOptions: { rootDir: '.', noEmit: true },
      include: [],
      files: [`${STRATEGIES}/strategies.module.ts`, `${STRATEGIES}/vote-2.strategy.spec.ts`, `${STRATEGIES}/registered.spec.ts`],
    }),
  );
  writeFileSync(
    join(dir, 'jest.config.mjs'),
    [
      `import { swcOptions } from ${JSON.stringify(join(ROOT, 'swc.options.js'))};`,
      'export default {',
      "  extensionsToTreatAsEsm: ['.ts'],",
      "  transform: { '^.+\\\\.ts$': ['@swc/jest', swcOptions] },",
      "  moduleNameMapper: { '^(\\\\.{1,2}/.*)\\\\.js$': '$1' },",
      "  testEnvironment: 'node',",
      "  testMatch: ['<rootDir>/src/**/*.spec.ts'],",
      '};',
    ].join('\n'),
  );
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('npm run new:strategy', () => {
  it("checks a type with the strategy registry's pattern (src/common/names.ts; the script runs without a build, so it keeps a copy)", () => {
    const script = readFileSync(join(ROOT, 'scripts/new-strategy.mjs'), 'utf8');
    expect(/^const TYPE_RE = \/(.*)\/;$/m.exec(script)?.[1]).toBe(WORKFLOW_TYPE.pattern);
  });

  it('writes the provider, its spec and the module line', () => {
    const result = generate('vote-2');
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('Vote2Strategy');

    expect(read('vote-2.strategy.ts')).toContain(
      "@DecisionStrategyProvider('vote-2')\n@Injectable()\nexport class Vote2Strategy implements DecisionStrategy {",
    );
    expect(read('vote-2.strategy.spec.ts')).toContain("import { strategyHarness } from './testing.js';");
    const module = read('strategies.module.ts');
    expect(module).toContain("import { TradingDecisionStrategy } from './trading.strategy.js';\nimport { Vote2Strategy } from './vote-2.strategy.js';\n");
    expect(module).toContain('providers: [TradingDecisionStrategy, Vote2Strategy],');
  });

  it('refuses an existing file or an invalid type with one line, changing nothing', () => {
    const module = read('strategies.module.ts');
    const strategy = read('vote-2.strategy.ts');
    for (const [args, message] of [
      [['vote-2'], /^new:strategy: .*vote-2\.strategy\.ts already exists\n$/],
      [['Bad Type'], /^new:strategy: invalid workflow type "Bad Type": 1 to 64 characters of a-z 0-9 _ - .*\n$/],
      [['x'.repeat(65)], /^new:strategy: invalid workflow type "x{65}"/],
      [['vote_2'], /^new:strategy: Vote2Strategy is already in .*strategies\.module\.ts\n$/],
      [[], /^new:strategy: no workflow type given \(usage: npm run new:strategy -- <type> \[--root <dir>\]\)\n$/],
    ] as const) {
      const result = generate(...args);
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(message);
      expect(result.stdout).toBe('');
    }
    expect(read('strategies.module.ts')).toBe(module);
    expect(read('vote-2.strategy.ts')).toBe(strategy);
    expect(() => read('vote_2.strategy.ts')).toThrow(/ENOENT/);
  });

  it('generates code that type-checks, a spec that passes, and a provider the registry finds', () => {
    // Beside the generated spec: the module as edited, started by Nest, serves the new type.
    writeFileSync(
      join(dir, STRATEGIES, 'registered.spec.ts'),
      [
        "import 'reflect-metadata';",
        "import { ConfigModule } from '@nestjs/config';",
        "import { DiscoveryModule } from '@nestjs/core';",
        "import { Test } from '@nestjs/testing';",
        "import { workflowConfig } from '../../config/configuration.js';",
        "import { StrategiesModule } from './strategies.module.js';",
        "import { StrategyRegistry } from './strategy.registry.js';",
        "import { Vote2Strategy } from './vote-2.strategy.js';",
        '',
        "it('registers the generated provider', async () => {",
        '  const moduleRef = await Test.createTestingModule({',
        '    imports: [ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, load: [workflowConfig] }), DiscoveryModule, StrategiesModule],',
        '    providers: [StrategyRegistry],',
        '  }).compile();',
        '  await moduleRef.init();',
        '  const registry = moduleRef.get(StrategyRegistry);',
        "  expect(registry.types().sort()).toEqual(['trading', 'vote-2']);",
        "  expect(registry.get('vote-2')).toBeInstanceOf(Vote2Strategy);",
        '  await moduleRef.close();',
        '});',
        '',
      ].join('\n'),
    );

    const tsc = run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json']);
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);

    const jest = run(process.execPath, [
      '--experimental-vm-modules',
      '--no-warnings',
      join(ROOT, 'node_modules/jest/bin/jest.js'),
      '--config',
      'jest.config.mjs',
      '--ci',
      '--runInBand',
      `${STRATEGIES}/vote-2.strategy.spec.ts`,
      `${STRATEGIES}/registered.spec.ts`,
    ]);
    expect(jest.stderr).toMatch(/Tests:\s+7 passed, 7 total/);
    expect(jest.status).toBe(0);
  }, 120000);
});
