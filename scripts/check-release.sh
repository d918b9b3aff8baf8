#!/usr/bin/env bash
# Release gate: fails (non-zero, naming file and line) when the plugin folder could ship the
# CCFLUX_ALLOW_HTTP escape hatch. Silent and 0 otherwise.
set -u
cd "$(dirname "$0")/.." || exit 2
status=0
hits=$(grep -rn CCFLUX_ALLOW_HTTP plugin/scripts plugin/hooks 2>/dev/null)
if [ -n "$hits" ]; then
  printf '%s\n' "$hits" | while IFS= read -r line; do
    printf 'check-release: CCFLUX_ALLOW_HTTP must not ship in the plugin: %s\n' "$line" >&2
  done
  status=1
fi
exit $status
