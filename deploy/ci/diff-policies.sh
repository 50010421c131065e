#!/usr/bin/env bash
# For each policy file a change touches (against a base Git revision), replays
# recorded decisions through the old and the new policy with `palisade policy
# diff` and prints what changes. Fails when outcomes change (exit 3 of policy
# diff), and when the change touches checks a recording cannot show (exit 4:
# rate limits, token verification, body schemas...) unless
# PALISADE_DIFF_ACCEPT_UNREPLAYED=1 says a reviewer has looked.
#
#   deploy/ci/diff-policies.sh origin/main recordings/decisions.ndjson deploy
#
# The recording is the sidecars' decision stream (OCSF NDJSON), for example
# the last day of palisade.decisions.v1 taken by a scheduled job:
#   kcat -C -b BROKER -t palisade.decisions.v1 -o s@$(( ($(date +%s) - 86400) * 1000 )) -e > decisions.ndjson
set -euo pipefail

if [ "$#" -lt 2 ]; then
  echo "usage: diff-policies.sh BASE_REF DECISIONS.ndjson [DIR...]" >&2
  exit 2
fi
base=$1
decisions=$2
shift 2
[ "$#" -eq 0 ] && set -- .
palisade=${PALISADE:-palisade}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mapfile -t changed < <(git diff --name-only --diff-filter=AM "$base" -- "$@" | grep -E '\.(ya?ml|json)$' || true)
status=0
n=0
for f in "${changed[@]}"; do
  grep -qE '^kind:[[:space:]]*Policy[[:space:]]*$' "$f" 2>/dev/null || continue
  n=$((n + 1))
  old="$tmp/$n.$(basename "$f")"
  if ! git show "$base:$f" > "$old" 2>/dev/null; then
    echo "new     $f (no earlier version to compare)"
    continue
  fi
  rc=0
  # shellcheck disable=SC2086 # $palisade may be a command with arguments
  $palisade policy diff "$old" "$f" --decisions "$decisions" || rc=$?
  case $rc in
    0) echo "same    $f" ;;
    3) echo "CHANGES $f: recorded requests get another outcome" >&2; status=1 ;;
    4)
      if [ "${PALISADE_DIFF_ACCEPT_UNREPLAYED:-0}" = 1 ]; then echo "review  $f: changes a recording cannot show (accepted)"
      else echo "REVIEW  $f: changes a recording cannot show; set PALISADE_DIFF_ACCEPT_UNREPLAYED=1 once reviewed" >&2; status=1; fi ;;
    *) echo "ERROR   $f: policy diff exited $rc" >&2; status=1 ;;
  esac
done
[ "$n" -eq 0 ] && echo "diff-policies: no policy changed since $base under: $*"
exit "$status"
