#!/usr/bin/env bash
# Release gate (CI and the release workflow run it). Silent and exit 0 when the tree may ship;
# otherwise one line per problem on stderr, naming file and line, and exit 1.
#
# 1. CCFLUX_ALLOW_HTTP (plain-http escape hatch, local development only) must not appear in
#    anything that ships: every file under plugin/ and .claude-plugin/ (scripts, hooks, manifests,
#    docs, archives), with one exception: the compiled CLI itself (plugin/dist/*.cjs, the V8
#    compile cache written beside it at run time, and the binaries plugin/bin/ccflux-*), which
#    contains the name because it *reads* the variable. A
#    file that could *set* it for users (a wrapper, a hooks.json "env", a manifest) fails.
# 2. No config.json, token_cache.json or signing_key (user secrets) is tracked by git.
# 3. The version in package.json equals plugin/.claude-plugin/plugin.json's and every version in
#    .claude-plugin/marketplace.json; every JSON file that ships parses.
set -u
cd "$(dirname "$0")/.." || exit 2
status=0
problem() {
  printf 'check-release: %s\n' "$*" >&2
  status=1
}

# 1. CCFLUX_ALLOW_HTTP in shipped files.
ship_dirs=()
for d in plugin .claude-plugin; do [ -d "$d" ] && ship_dirs+=("$d"); done
if [ ${#ship_dirs[@]} -gt 0 ]; then
  while IFS= read -r file; do
    case $file in
      plugin/dist/*/* | plugin/bin/*/*) ;; # nested: not the CLI
      plugin/dist/*.cjs | plugin/dist/*.cjs.*.cache | plugin/bin/ccflux-linux-x64 | plugin/bin/ccflux-linux-arm64 | \
        plugin/bin/ccflux-darwin-x64 | plugin/bin/ccflux-darwin-arm64 | \
        plugin/bin/ccflux-win32-x64.exe | plugin/bin/ccflux-win32-arm64.exe) continue ;;
    esac
    while IFS= read -r hit; do
      problem "${file}:${hit%%:*}: CCFLUX_ALLOW_HTTP must not ship in the plugin (plain http is for local development only)"
    done < <(grep -naF CCFLUX_ALLOW_HTTP -- "$file")
  done < <(grep -rlF --exclude-dir=node_modules CCFLUX_ALLOW_HTTP "${ship_dirs[@]}" 2>/dev/null)
fi

# 2. Secrets tracked by git.
if tracked=$(git ls-files 2>/dev/null); then
  while IFS= read -r file; do
    case ${file##*/} in
      config.json | token_cache.json | signing_key)
        problem "${file}:1: a ccflux secret file is tracked by git: git rm --cached it and rotate what it holds"
        ;;
    esac
  done <<<"$tracked"
else
  problem ".: not a git work tree (or git is missing): cannot check for tracked secrets"
fi

# 3. Versions agree; shipped JSON parses.
if command -v node >/dev/null 2>&1; then
  node - <<'EOF' || status=1
const fs = require('node:fs');
const path = require('node:path');
let failed = false;
const problem = (msg) => { process.stderr.write(`check-release: ${msg}\n`); failed = true; };
const lineOf = (text, index) => text.slice(0, Math.max(0, index)).split('\n').length;

function load(file) {
  let text;
  try { text = fs.readFileSync(file, 'utf8'); } catch { return null; }
  try { return { text, json: JSON.parse(text) }; } catch (err) {
    const at = /position (\d+)/.exec(err.message);
    problem(`${file}:${at ? lineOf(text, Number(at[1])) : 1}: invalid JSON (${err.message})`);
    return undefined;
  }
}

// Every JSON file that ships must parse (a broken hooks.json silently disables the plugin).
const walk = (dir) => {
  let entries = [];
  try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return; }
  for (const e of entries) {
    const p = path.posix.join(dir, e.name);
    if (e.isDirectory() && e.name !== 'node_modules') walk(p);
    else if (e.isFile() && e.name.endsWith('.json')) load(p);
  }
};
walk('plugin');
walk('.claude-plugin');

const pkg = load('package.json');
if (!pkg) { if (pkg === null) problem('package.json:1: missing'); process.exit(1); }
const want = pkg.json.version;
const versionLine = (doc, value) => {
  const m = new RegExp(`"version"\\s*:\\s*"${String(value).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"`).exec(doc.text);
  return m ? lineOf(doc.text, m.index) : 1;
};

const pluginFile = 'plugin/.claude-plugin/plugin.json';
const plugin = load(pluginFile);
if (plugin === null) problem(`${pluginFile}:1: missing`);
else if (plugin) {
  if (typeof plugin.json.version !== 'string') problem(`${pluginFile}:1: no "version" (Claude Code caches plugins by version; package.json has ${want})`);
  else if (plugin.json.version !== want) problem(`${pluginFile}:${versionLine(plugin, plugin.json.version)}: version ${plugin.json.version} differs from package.json's ${want}`);
}

const mktFile = '.claude-plugin/marketplace.json';
const mkt = load(mktFile);
if (mkt) {
  const found = [];
  if (mkt.json.version !== undefined) found.push(mkt.json.version);
  if (mkt.json.metadata && mkt.json.metadata.version !== undefined) found.push(mkt.json.metadata.version);
  for (const entry of Array.isArray(mkt.json.plugins) ? mkt.json.plugins : []) {
    if (entry && entry.name === 'ccflux' && entry.version !== undefined) found.push(entry.version);
  }
  for (const v of found) {
    if (v !== want) problem(`${mktFile}:${versionLine(mkt, v)}: version ${v} differs from package.json's ${want}`);
  }
}
process.exit(failed ? 1 : 0);
EOF
else
  problem "package.json:1: node is needed to compare versions and is not in PATH"
fi

exit $status
