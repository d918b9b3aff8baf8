#!/bin/sh
# ccflux hook wrapper (Linux, macOS, WSL, Git Bash/MSYS).
#
# Claude Code waits for this script, so it only saves the hook JSON from stdin to a private temp
# file, starts ccflux in the background with its own session and no inherited pipes (a child
# holding Claude Code's stdout open would make Claude Code wait for it), and exits 0 at once,
# printing nothing. ccflux reads the file, deletes it and does the real work. The hook JSON never
# goes on a command line.
cmd=${1:-}
case $cmd in
  init|report-turn|session-end) ;;
  *) cat >/dev/null 2>&1; exit 0 ;;
esac

root=${CLAUDE_PLUGIN_ROOT:-$(cd "$(dirname "$0")/.." 2>/dev/null && pwd)}

log_why() {
  dir=${CLAUDE_CONFIG_DIR:-$HOME/.claude}/ccflux
  [ -d "$dir" ] || return 0
  printf '%s ccflux-hook.sh: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)" "$1" >>"$dir/errors.log" 2>/dev/null
}

spool=$(umask 077 && mktemp "${TMPDIR:-/tmp}/ccflux-hook.XXXXXXXX" 2>/dev/null) || {
  cat >/dev/null 2>&1
  log_why "cannot create a temp file; hook skipped"
  exit 0
}
cat >"$spool" 2>/dev/null

# One uname for both (every fork counts: Claude Code waits for this script).
sys=$(uname -sm 2>/dev/null)
case ${sys% *} in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  MINGW*|MSYS*|CYGWIN*) os=win32 ;;
  *) os=unknown ;;
esac
case ${sys##* } in
  x86_64|amd64) arch=x64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) arch=unknown ;;
esac
exe=
[ "$os" = win32 ] && exe=.exe

# >>> missing-binary download (plugin/scripts/fetch-binary.sh; docs/release.md) >>>
# In the background, detached: this hook never waits for it. The binary is used from the next run.
# Only a released plugin folder has bin/SHA256SUMS to verify against; a checkout has none.
if [ ! -x "$root/bin/ccflux-$os-$arch$exe" ] && [ -f "$root/bin/SHA256SUMS" ] && [ -f "$root/scripts/fetch-binary.sh" ]; then
  if command -v setsid >/dev/null 2>&1; then
    setsid sh "$root/scripts/fetch-binary.sh" "$root" "ccflux-$os-$arch$exe" </dev/null >/dev/null 2>&1 &
  else
    sh "$root/scripts/fetch-binary.sh" "$root" "ccflux-$os-$arch$exe" </dev/null >/dev/null 2>&1 &
  fi
fi
# <<< missing-binary download <<<

if [ -x "$root/bin/ccflux-$os-$arch$exe" ] && [ -f "$root/bin/SHA256SUMS" ]; then
  # A release: the binary runs only once it matches SHA256SUMS, checked in the detached process.
  set -- sh "$root/scripts/run-verified.sh" "$root/bin/SHA256SUMS" "$root/bin/ccflux-$os-$arch$exe"
elif [ -x "$root/bin/ccflux-$os-$arch$exe" ]; then
  set -- "$root/bin/ccflux-$os-$arch$exe"
elif command -v node >/dev/null 2>&1 && [ -f "$root/dist/ccflux.cjs" ]; then
  if [ ! -f "$root/dist/ccflux.body.cjs" ]; then
    # The loader without its code would fail where no one sees it (the worker's output is /dev/null).
    rm -f "$spool"
    log_why "$root/dist/ccflux.body.cjs is missing: the plugin is incomplete; nothing reported (reinstall the plugin)"
    exit 0
  fi
  set -- node "$root/dist/ccflux.cjs"
else
  rm -f "$spool"
  log_why "no ccflux binary for $os-$arch and no node in PATH; nothing reported (install Node.js 20+ or the platform binary)"
  exit 0
fi

# NODE_EXTRA_CA_CERTS makes every Node start ~90 ms slower; ccflux loads that file itself, and
# only when it sends.
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ]; then
  CCFLUX_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS
  export CCFLUX_EXTRA_CA_CERTS
  unset NODE_EXTRA_CA_CERTS
fi

# The worker may outlive this turn: it must not keep the project folder busy.
case $root:$spool in /*:/*) cd / 2>/dev/null ;; esac

if command -v setsid >/dev/null 2>&1; then
  setsid "$@" "$cmd" --input-file "$spool" --foreground </dev/null >/dev/null 2>&1 &
else
  nohup "$@" "$cmd" --input-file "$spool" --foreground </dev/null >/dev/null 2>&1 &
fi
exit 0
