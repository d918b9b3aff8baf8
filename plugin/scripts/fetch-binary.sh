#!/bin/sh
# Downloads this plugin's missing platform binary from the GitHub release of the plugin's version
# and installs it only after its SHA-256 matches the one shipped in the plugin folder
# (bin/SHA256SUMS): download to a private temp name, verify, chmod, rename. A mismatch is logged
# and the file discarded. https only, redirects included.
#
# ccflux-hook.sh starts it in the background when the binary is missing, so a hook never waits
# for it. Prints nothing; always exits 0; problems go to <data_dir>/ccflux/errors.log (and
# activity.log), where <data_dir> is $CLAUDE_CONFIG_DIR or ~/.claude, when that folder exists.
#
# Usage: fetch-binary.sh <plugin_root> <binary name, e.g. ccflux-linux-x64>
# Environment: CCFLUX_RELEASE_BASE_URL (https, for mirrors and tests) replaces
#   https://github.com/<repo>/releases/download/v<version>; CCFLUX_CA_CERT (PEM) is the CA bundle
#   curl trusts instead of the system one (internal mirrors, tests).
release_repo=ccflux/ccflux
retry_after_minutes=60
stale_lock_minutes=30

root=${1:-}
name=${2:-}
case $name in
  ccflux-linux-x64 | ccflux-linux-arm64 | ccflux-darwin-x64 | ccflux-darwin-arm64 | ccflux-win32-x64.exe | ccflux-win32-arm64.exe) ;;
  *) exit 0 ;;
esac
[ -n "$root" ] || exit 0
bin=$root/bin
[ -x "$bin/$name" ] && exit 0
# No checksums at all: a development folder, not a release; nothing to verify a download against.
[ -f "$bin/SHA256SUMS" ] || exit 0

log() {
  dir=${CLAUDE_CONFIG_DIR:-$HOME/.claude}/ccflux
  [ -d "$dir" ] || return 0
  line="$(date -u +%Y-%m-%dT%H:%M:%SZ 2>/dev/null) $1 fetch-binary.sh: $2"
  # The logs are 0600 like every ccflux state file (doctor checks it): created private here too.
  (
    umask 077
    [ "$1" = error ] && printf '%s\n' "$line" >>"$dir/errors.log" 2>/dev/null
    printf '%s\n' "$line" >>"$dir/activity.log" 2>/dev/null
  )
}

# After a failure, wait before trying again: every turn would otherwise re-download ~90 MB.
failed=$bin/.fetch-failed
[ -n "$(find "$failed" -mmin "-$retry_after_minutes" 2>/dev/null)" ] && exit 0
give_up() {
  log error "$1"
  : >"$failed" 2>/dev/null
  exit 0
}

# One download at a time per plugin folder; a lock older than that belongs to a dead process.
lock=$bin/.fetch.lock
if ! mkdir "$lock" 2>/dev/null; then
  [ -n "$(find "$lock" -maxdepth 0 -mmin "+$stale_lock_minutes" 2>/dev/null)" ] || exit 0
  rm -rf "$lock" && mkdir "$lock" 2>/dev/null || exit 0
fi
tmp=
trap 'rm -rf "$lock"; [ -n "$tmp" ] && rm -f "$tmp"' EXIT
trap 'exit 0' INT TERM HUP

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum <"$1" | awk '{ print $1 }'
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 <"$1" | awk '{ print $1 }'
  elif command -v openssl >/dev/null 2>&1; then
    openssl dgst -sha256 -r <"$1" | awk '{ print $1 }'
  fi
}

expected=$(awk -v n="$name" '($2 == n || $2 == "*" n) && $1 ~ /^[0-9a-f]+$/ && length($1) == 64 { print $1; exit }' "$bin/SHA256SUMS" 2>/dev/null)
[ -n "$expected" ] || give_up "no checksum for $name in $bin/SHA256SUMS; not downloading it (install Node.js 20+ or put the binary there by hand)"

# Present but not executable (an unzip that dropped the mode): usable only if it is the right file.
if [ -e "$bin/$name" ]; then
  if [ "$(sha256_of "$bin/$name")" = "$expected" ]; then
    chmod 755 "$bin/$name" 2>/dev/null || give_up "cannot make $bin/$name executable"
    exit 0
  fi
  log error "$bin/$name does not match bin/SHA256SUMS; replacing it with a verified download"
fi

version=$(sed -n 's/^[[:space:]]*"version"[[:space:]]*:[[:space:]]*"\([0-9A-Za-z.+-]*\)".*/\1/p' "$root/.claude-plugin/plugin.json" 2>/dev/null | head -n 1)
[ -n "$version" ] || give_up "no version in $root/.claude-plugin/plugin.json; not downloading $name"
base=${CCFLUX_RELEASE_BASE_URL:-https://github.com/$release_repo/releases/download/v$version}
case $base in
  https://*) ;;
  *) give_up "refusing to download $name over a non-https URL ($base)" ;;
esac
url=${base%/}/$name

tmp=$bin/.$name.download.$$
if command -v curl >/dev/null 2>&1; then
  set -- --proto =https --proto-redir =https --fail --silent --show-error --location --max-redirs 5 \
    --connect-timeout 20 --max-time 900 --output "$tmp"
  [ -n "${CCFLUX_CA_CERT:-}" ] && set -- "$@" --cacert "$CCFLUX_CA_CERT"
  err=$( (umask 077 && curl "$@" "$url") 2>&1) || give_up "download of $url failed: $(printf '%s' "$err" | tr -d '\r' | head -n 1)"
elif command -v node >/dev/null 2>&1 && [ -f "$root/dist/ccflux.cjs" ]; then
  tmp=
  # ccflux verifies and installs the binary itself, with the same rules.
  node "$root/dist/ccflux.cjs" fetch-binary --plugin-root "$root" >/dev/null 2>&1 || : >"$failed" 2>/dev/null
  exit 0
else
  give_up "cannot download $name: neither curl nor node is available"
fi

actual=$(sha256_of "$tmp")
[ -n "$actual" ] || give_up "cannot verify $name: no sha256sum, shasum or openssl; file discarded"
if [ "$actual" != "$expected" ]; then
  give_up "checksum mismatch for $name from $url: expected $expected, got $actual; file discarded"
fi
chmod 755 "$tmp" && mv -f "$tmp" "$bin/$name" || give_up "cannot install $name into $bin"
tmp=
rm -f "$failed"
log info "downloaded $name $version from $url (sha256 $expected verified)"
exit 0
