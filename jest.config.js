import { swcOptions } from './swc.options.js';

// Jest runs the TypeScript sources as native ESM (node --experimental-vm-modules), compiled by SWC with
// legacy decorators and decorator metadata, as Nest's DI needs.
const swc = ['@swc/jest', swcOptions];

const common = {
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': swc },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testEnvironment: 'node',
  // The scripts' Node toolchain and servers (scripts/lib.sh): nothing to test or resolve there.
  modulePathIgnorePatterns: ['<rootDir>/.cache/'],
};

export default {
  // Per-project testTimeout is not honoured by jest; the e2e tests need the long one.
  testTimeout: 90000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/src/**/*.spec.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.int-spec.ts'],
    },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.e2e-spec.ts'] },
    // Manifests and observability files under deploy/ (some start the built service, promtool and prometheus).
    { ...common, displayName: 'deploy', testMatch: ['<rootDir>/test/deploy/**/*.spec.ts'] },
  ],
};
