// SWC options shared by jest (jest.config.js) and the fault suite's loader (test/faults/ts-hooks.mjs):
// TypeScript to ES modules, with legacy decorators and decorator metadata, as Nest's DI needs.
export const swcOptions = {
  jsc: {
    target: 'es2022',
    parser: { syntax: 'typescript', decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true },
    keepClassNames: true,
  },
  module: { type: 'es6' },
  sourceMaps: 'inline',
};
