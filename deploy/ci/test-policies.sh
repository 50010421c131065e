#!/usr/bin/env bash
# Runs `palisade policy test` for every test file under the given directories
# (default: the current one): a file NAME.test.yaml (or .yml, .json) holds the
# sample requests for the policy NAME.yaml beside it. Exits non-zero if any
# test fails or any test file has no policy, after running them all.
#
#   deploy/ci/test-policies.sh deploy/k8s
#   PALISADE="docker run --rm -v $PWD:$PWD -w $PWD ghcr.io/palisade-dev/palisade:0.1.0" deploy/ci/test-policies.sh .
set -euo pipefail

palisade=${PALISADE:-palisade}
[ "$#" -eq 0 ] && set -- .

mapfile -d '' files < <(
  find "$@" -type d \( -name node_modules -o -name .git \) -prune -o \
    -type f \( -name '*.test.yaml' -o -name '*.test.yml' -o -name '*.test.json' \) -print0 | sort -z
)
if [ "${#files[@]}" -eq 0 ]; then
  echo "test-policies: no policy test files (NAME.test.yaml) under: $*" >&2
  exit 1
fi

failed=0
for t in "${files[@]}"; do
  base=${t%.test.*}
  policy=""
  for ext in yaml yml json; do
    if [ -f "$base.$ext" ]; then policy="$base.$ext"; break; fi
  done
  if [ -z "$policy" ]; then
    echo "NO POLICY for $t (expected $base.yaml)" >&2
    failed=1
    continue
  fi
  # shellcheck disable=SC2086 # $palisade may be a command with arguments
  if ! $palisade policy test "$policy" "$t"; then
    echo "FAILED  $t" >&2
    failed=1
  fi
done
exit "$failed"
