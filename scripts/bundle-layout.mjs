// The layout of plugin/dist/ccflux.cjs (scripts/build.mjs): a compile-cache loader, then the code
// in a block comment after BODY_MARKER, with every `*/` stored as `*\0/`.
export const BODY_MARKER = '\n/*ccflux:body\n';

/** The bundle's code without the loader (scripts/build-binary.mjs: a SEA has its own code cache). */
export function bundleCode(text) {
  const at = text.indexOf(BODY_MARKER);
  if (at === -1) return text.replace(/^#![^\n]*\n/, '');
  return text.slice(at + BODY_MARKER.length, text.lastIndexOf('*/')).replaceAll('*\0/', '*/');
}
