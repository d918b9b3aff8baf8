#!/bin/sh
# Runs the platform binary only if it matches bin/SHA256SUMS (ccflux-hook.sh starts this detached,
# in the binary's place, so Claude Code never waits for the hash). A binary swapped after it was
# fetched and verified is not run: the mismatch is logged, the hook's spool file removed, and
# fetch-binary.sh replaces the file with a verified download on a later hook.
#
# Usage: run-verified.sh <SHA256SUMS> <binary> <ccflux arguments...>
# The hash is remembered per binary size and modification time, so an unchanged binary is hashed
# once, not on every turn.
sums=$1
bin=$2
shift 2
name=${bin##*/}
dir=${CLAUDE_CONFIG_DIR:-$HOME/.claude}/ccflux

log_error() {
  [ -d "$dir" ] || return 0
  printf '%s run-verified.sh: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)" "$1" >>"$dir/errors.log" 2>/dev/null
}

drop_spool() {
  while [ $# -gt 0 ]; do
    if [ "$1" = --input-file ] && [ $# -ge 2 ]; then rm -f "$2"; return 0; fi
    shift
  done
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum <"$1" | awk '{ print $1 }'
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 <"$1" | awk '{ print $1 }'
  elif command -v openssl >/dev/null 2>&1; then
    openssl dgst -sha256 -r <"$1" | awk '{ print $1 }'
  fi
}

expected=$(awk -v n="$name" '($2 == n || $2 == "*" n) && $1 ~ /^[0-9a-f]+$/ && length($1) == 64 { print $1; exit }' "$sums" 2>/dev/null)
if [ -z "$expected" ]; then
  log_error "no checksum for $name in $sums; not running it"
  drop_spool "$@"
  exit 0
fi

# Size and mtime as `ls -lnL` prints them (portable), with the expected hash: the cache key.
# Without ls (or its fields) there is no key: hash every time.
meta=$(ls -lnL "$bin" 2>/dev/null | awk '{ print $5, $6, $7, $8 }')
stamp="$expected $meta"
cache=$dir/.binary-verified
if [ -z "$meta" ] || [ ! -f "$cache" ] || [ "$(cat "$cache" 2>/dev/null)" != "$stamp" ]; then
  actual=$(sha256_of "$bin")
  if [ "$actual" != "$expected" ]; then
    log_error "$bin does not match $sums (got ${actual:-no sha256 tool}); not running it"
    drop_spool "$@"
    exit 0
  fi
  [ -n "$meta" ] && [ -d "$dir" ] && (umask 077 && printf '%s\n' "$stamp" >"$cache.$$" && mv -f "$cache.$$" "$cache") 2>/dev/null
fi
exec "$bin" "$@"
