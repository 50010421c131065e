#!/usr/bin/env bash
# Signs every Palisade policy file under the given directories (default: the
# current one) with the CI's policy-signing key, writing NAME.yaml.sig beside
# each NAME.yaml (cosign sign-blob format), then verifies each signature with
# the public key the sidecars trust. Run it after check-policies.sh and
# test-policies.sh passed, on the main branch only; commit or publish the
# .sig files with the policies (the ConfigMap carries both).
#
#   PALISADE_SIGNING_KEY=/run/secrets/policy-signing.key \
#   PALISADE_POLICY_PUBLIC_KEYS=deploy/k8s/example/policy-keys/policy.pub \
#     deploy/ci/sign-policies.sh deploy/k8s
#
# PALISADE_SIGNING_KEY: unencrypted PKCS#8 P-256 private key (from the CI's
# secret store, never committed). With cosign instead, the same signature:
#   cosign sign-blob --key cosign.key --tlog-upload=false --output-signature NAME.yaml.sig NAME.yaml
set -euo pipefail

palisade=${PALISADE:-palisade}
key=${PALISADE_SIGNING_KEY:?set PALISADE_SIGNING_KEY to the policy-signing private key (PEM)}
pub=${PALISADE_POLICY_PUBLIC_KEYS:?set PALISADE_POLICY_PUBLIC_KEYS to the public key file(s) the sidecars trust}
[ "$#" -eq 0 ] && set -- .

# shellcheck source=deploy/ci/policy-files.sh
source "$(dirname "${BASH_SOURCE[0]}")/policy-files.sh"
mapfile -d '' files < <(policy_files "$@")
if [ "${#files[@]}" -eq 0 ]; then
  echo "sign-policies: no Palisade policy files under: $*" >&2
  exit 1
fi

# --key once per trusted public key file (the list is comma-separated, as the sidecar's setting).
keyargs=()
IFS=',' read -r -a pubs <<< "$pub"
for p in "${pubs[@]}"; do [ -n "$p" ] && keyargs+=(--key "$p"); done

for f in "${files[@]}"; do
  # shellcheck disable=SC2086 # $palisade may be a command with arguments
  $palisade policy sign "$f" --key "$key"
  # shellcheck disable=SC2086
  $palisade policy verify "$f" "${keyargs[@]}"
done
