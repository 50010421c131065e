#!/usr/bin/env bash
# Runs `palisade policy check` on every Palisade policy file under the given
# directories (default: the current one): any YAML file whose apiVersion is
# palisade.dev/v1 and kind is Policy. Exits non-zero if any policy is invalid,
# after checking them all, so one CI run reports every broken file.
#
#   deploy/ci/check-policies.sh deploy/k8s
#   PALISADE="docker run --rm -v $PWD:$PWD -w $PWD ghcr.io/palisade-dev/palisade:0.1.0" deploy/ci/check-policies.sh .
set -euo pipefail

palisade=${PALISADE:-palisade}
[ "$#" -eq 0 ] && set -- .

# shellcheck source=deploy/ci/policy-files.sh
source "$(dirname "${BASH_SOURCE[0]}")/policy-files.sh"
mapfile -d '' files < <(policy_files "$@")
if [ "${#files[@]}" -eq 0 ]; then
  echo "check-policies: no Palisade policy files under: $*" >&2
  exit 1
fi

failed=0
for f in "${files[@]}"; do
  # shellcheck disable=SC2086 # $palisade may be a command with arguments
  if $palisade policy check "$f"; then
    echo "ok      $f"
  else
    echo "INVALID $f" >&2
    failed=1
  fi
done
exit "$failed"
