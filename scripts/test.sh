#!/usr/bin/env bash
# The one test command (`npm test`): type check, real parts up, every test, parts down.
# Installs what it needs: npm deps (pretest), kcat and Prometheus (Debian),
# the Kafka broker jars (Maven Central, cached).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
echo "== node $(node --version), $(tsc --version)"

echo "== type check"
tsc -p tsconfig.json

echo "== real parts: kcat, prometheus, Kafka broker"
bash scripts/ensure-apt.sh kcat prometheus
bash deploy/kafka/broker.sh start
trap 'bash deploy/kafka/broker.sh stop >/dev/null 2>&1 || true' EXIT
export PALISADE_KAFKA_BROKERS="127.0.0.1:${KAFKA_PORT:-19092}"

echo "== tests"
mkdir -p .run
status=0
vitest run --reporter=default --reporter=json --outputFile.json=.run/vitest.json "$@" || status=$?

# A plain closing line any CI can read: "N passed, N failed".
node -e '
const r = JSON.parse(require("fs").readFileSync(".run/vitest.json", "utf8"));
const skipped = (r.numPendingTests || 0) + (r.numTodoTests || 0);
console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
if (r.numTotalTests === 0) process.exitCode = 1;
' || status=1
exit $status
