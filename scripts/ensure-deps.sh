#!/usr/bin/env bash
# Installs the npm dependencies (and with them the pinned Node runtime, the `node`
# devDependency) when node_modules is missing or older than package-lock.json.
# Runs before `npm start` and `npm test`, so a fresh clone needs no other step.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.palisade-lock-hash
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x node_modules/.bin/node ]; then
  exit 0
fi
echo "palisade: installing dependencies (npm ci)…" >&2
npm ci --no-audit --no-fund --loglevel=error >&2
echo "$want" > "$stamp"
