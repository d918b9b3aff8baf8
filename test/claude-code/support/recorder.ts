/**
 * Turns a real Claude Code session into a fixture timeline (the format of
 * `/work/shared/fixtures/README.md`): a user-settings hook records each hook's input and how far
 * every transcript had been written at that moment; the timeline then appends each transcript's
 * complete lines up to that point before replaying the hook. Long strings (system prompts,
 * `api-request-blob` content, tool listings) are cut to a placeholder and the scratch paths are
 * replaced by stable ones, so a fixture holds the real line types and fields, not prompt text.
 */
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Profile } from './claude';
import type { BilledByModel } from './fake-api';

const HOOK = fileURLToPath(new URL('./record-hook.cjs', import.meta.url));
const EVENTS = ['SessionStart', 'Stop', 'SubagentStop', 'SessionEnd'] as const;
const KEEP_CHARS = 80;
const STABLE_PROJECT = '/home/dev/project';
const STABLE_CONFIG = '/home/dev/.claude';
const DATA_DIR = '$' + '{DATA_DIR}';

/** Adds the recording hook to the profile's user settings; returns the record file. */
export async function installRecorder(profile: Profile): Promise<string> {
  const record = join(profile.root, 'hooks-record.jsonl');
  const settingsPath = join(profile.configDir, 'settings.json');
  const settings = JSON.parse(await readFile(settingsPath, 'utf8')) as Record<string, unknown>;
  const command = `"${process.execPath}" "${HOOK}" "${record}"`;
  settings.hooks = Object.fromEntries(EVENTS.map((e) => [e, [{ hooks: [{ type: 'command', command }] }]]));
  await writeFile(settingsPath, JSON.stringify(settings, null, 2));
  return record;
}

/** `-` for every non-alphanumeric character, as Claude Code names a project folder. */
const projectFolder = (path: string) => path.replace(/[^A-Za-z0-9]/g, '-');

function redact(value: unknown): unknown {
  if (typeof value === 'string') {
    return value.length > KEEP_CHARS ? `[${value.length} chars cut by the fixture recorder]` : value;
  }
  if (Array.isArray(value)) return value.map((v) => redact(v));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(v)]));
  }
  return value;
}

type V1Sums = Record<string, { input_tokens: number; output_tokens: number; cache_read_tokens: number; cache_write_tokens: number }>;

export interface RecordedFixture {
  timeline: string;
  /** `models`: what the receiver must hold (the v1 counters); `billed`: every counter the fake API billed. */
  expected: { models: V1Sums; billed: BilledByModel; naive_main_file_sum: V1Sums };
}

/** Builds the timeline and expected totals of a recorded profile. */
export function buildFixture(
  profile: Profile,
  record: string,
  meta: { scenario: string; email: string; sessions: string[] },
  models: BilledByModel,
): RecordedFixture {
  const projectsRoot = join(profile.configDir, 'projects');
  const swaps: Array<[string, string]> = [
    [projectFolder(profile.project), projectFolder(STABLE_PROJECT)],
    [profile.project, STABLE_PROJECT],
    [profile.configDir, STABLE_CONFIG],
    [profile.root, '/home/dev'],
  ];
  const stable = (text: string) => swaps.reduce((t, [from, to]) => t.split(from).join(to), text);
  const out: string[] = [JSON.stringify({ meta: { ...meta, seed: 0 } })];
  const emitted = new Map<string, number>();
  const appendUpTo = (file: string, size: number) => {
    const bytes = readFileSync(join(projectsRoot, file));
    const from = emitted.get(file) ?? 0;
    const end = bytes.subarray(0, size).lastIndexOf(0x0a) + 1;
    if (end <= from) return;
    const lines = bytes.subarray(from, end).toString('utf8').split('\n').filter(Boolean);
    const data = lines.map((l) => `${JSON.stringify(redact(JSON.parse(stable(l))))}\n`).join('');
    out.push(JSON.stringify({ append: { file: `projects/${stable(file)}`, data } }));
    emitted.set(file, end);
  };
  const events = readFileSync(record, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { input: Record<string, unknown>; sizes: Record<string, number> });
  for (const { input, sizes } of events) {
    for (const [file, size] of Object.entries(sizes).sort()) appendUpTo(file, size);
    const hookInput = JSON.parse(stable(JSON.stringify(input).split(profile.configDir).join(DATA_DIR))) as Record<string, unknown>;
    for (const key of ['last_assistant_message', 'compact_summary']) if (typeof hookInput[key] === 'string') hookInput[key] = redact(hookInput[key]);
    out.push(JSON.stringify({ hook: { event: input.hook_event_name, input: hookInput } }));
  }
  // The Rust version's method, for contrast: every assistant line of the main files summed.
  const naive: V1Sums = {};
  for (const file of Object.keys(events.at(-1)?.sizes ?? {}).sort()) {
    if (file.includes('/subagents/')) continue;
    for (const line of readFileSync(join(projectsRoot, file), 'utf8').split('\n').filter(Boolean)) {
      const j = JSON.parse(line) as { type?: string; message?: { model?: string; usage?: Record<string, number> } };
      if (j.type !== 'assistant' || !j.message?.usage) continue;
      const u = j.message.usage;
      const m = j.message.model ?? 'unknown';
      const t = naive[m] ?? { input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0 };
      naive[m] = t;
      t.input_tokens += u.input_tokens ?? 0;
      t.output_tokens += u.output_tokens ?? 0;
      t.cache_read_tokens += u.cache_read_input_tokens ?? 0;
      t.cache_write_tokens += u.cache_creation_input_tokens ?? 0;
    }
  }
  const v1: V1Sums = {};
  for (const [m, b] of Object.entries(models)) {
    v1[m] = { input_tokens: b.input_tokens, output_tokens: b.output_tokens, cache_read_tokens: b.cache_read_tokens, cache_write_tokens: b.cache_write_tokens };
  }
  return { timeline: `${out.join('\n')}\n`, expected: { models: v1, billed: models, naive_main_file_sum: naive } };
}

export async function writeFixture(dir: string, fixture: RecordedFixture): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'timeline.jsonl'), fixture.timeline);
  await writeFile(join(dir, 'expected.json'), `${JSON.stringify(fixture.expected, null, 1)}\n`);
}
