/**
 * The layout is the architecture: `src/client/` is cut by pipeline role, and imports only go
 * down. A file may import from its own folder, from a lower layer, and from `src/protocol/`;
 * never upward, never sideways between folders of the same layer. No import cycles anywhere in
 * `src/`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tsFilesUnder } from '../helpers/source-files';

const SRC = path.resolve('src');

/** Layer of each folder, lowest first. Same number = siblings that must not import each other. */
const LAYERS: Record<string, number> = {
  protocol: 0,
  version: 0,
  'client/local': 1,
  'client/count': 2,
  'client/deliver': 3,
  'client/hook': 4,
  'client/commands': 4,
  cli: 5,
};

function folderOf(file: string): string {
  const rel = path.relative(SRC, file).replace(/\\/g, '/');
  const parts = rel.split('/');
  if (parts[0] === 'client') return `client/${parts[1]}`;
  return parts.length === 1 ? parts[0]!.replace(/\.ts$/, '') : parts[0]!;
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
    out.push(path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '')) + '.ts');
  }
  return out;
}

const files = tsFilesUnder(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

describe('source layout', () => {
  it('puts every src/client file in a known role folder', () => {
    const stray = files.filter((f) => !(folderOf(f) in LAYERS)).map((f) => path.relative(SRC, f));
    expect(stray).toEqual([]);
  });

  it('imports only from the same folder or a lower layer', () => {
    const bad: string[] = [];
    for (const [file, deps] of graph) {
      const from = folderOf(file);
      for (const dep of deps) {
        const to = folderOf(dep);
        if (to === from) continue;
        if ((LAYERS[to] ?? 99) >= (LAYERS[from] ?? -1)) {
          bad.push(`${path.relative(SRC, file)} -> ${path.relative(SRC, dep)}`);
        }
      }
    }
    expect(bad).toEqual([]);
  });

  it('has no import cycle', () => {
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (f: string, stack: string[]): void => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') {
        cycles.push([...stack.slice(stack.indexOf(f)), f].map((p) => path.relative(SRC, p)).join(' -> '));
        return;
      }
      state.set(f, 'open');
      for (const dep of graph.get(f) ?? []) if (graph.has(dep)) visit(dep, [...stack, f]);
      state.set(f, 'done');
    };
    for (const f of files) visit(f, []);
    expect(cycles).toEqual([]);
  });
});
