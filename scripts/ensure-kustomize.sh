#!/usr/bin/env bash
# Makes a Kustomize available for the manifest tests: `kubectl kustomize` when
# kubectl is installed, else a standalone kustomize built with `go install`
# from the Go module proxy into the cache (about 2 minutes, once per machine).
# Prints the directory to put on PATH (empty when kubectl is used).
set -euo pipefail
if command -v kubectl >/dev/null 2>&1 && kubectl version --client >/dev/null 2>&1; then exit 0; fi
bin="${PALISADE_CACHE:-$HOME/.cache/palisade}/bin"
if [ ! -x "$bin/kustomize" ]; then
  echo "palisade: building kustomize v5.5.0 with go install (once)…" >&2
  mkdir -p "$bin"
  GOBIN="$bin" GOFLAGS=-mod=mod go install sigs.k8s.io/kustomize/kustomize/v5@v5.5.0 >&2
fi
echo "$bin"
