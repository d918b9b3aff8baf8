declare const __CCFLUX_VERSION__: string | undefined;

/** Replaced at build time (scripts/build.mjs, vitest.config.ts) with package.json's version. */
export const VERSION: string = typeof __CCFLUX_VERSION__ === 'string' ? __CCFLUX_VERSION__ : '0.0.0-dev';
