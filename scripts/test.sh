#!/usr/bin/env bash
# The one test command (`npm test`): type check, real parts up, every test, parts down.
# Installs what it needs: npm deps (pretest), kcat, Prometheus and Alertmanager (Debian),
# the Kafka broker jars (Maven Central, cached).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
echo "== node $(node --version), $(tsc --version)"

echo "== type check"
tsc -p tsconfig.json

echo "== real parts: kcat, openssl, prometheus, alertmanager, kustomize, Kafka broker"
bash scripts/ensure-apt.sh kcat openssl prometheus prometheus-alertmanager
kbin=$(bash scripts/ensure-kustomize.sh)
[ -n "$kbin" ] && export PATH="$kbin:$PATH"
bash deploy/kafka/broker.sh start
trap 'bash deploy/kafka/broker.sh stop >/dev/null 2>&1 || true' EXIT
export PALISADE_KAFKA_BROKERS="127.0.0.1:${KAFKA_PORT:-19092}"

echo "== tests"
mkdir -p .run
rm -f .run/vitest.json .run/vitest-serial.json
status=0
# Files named *.serial.test.ts stop or restart shared parts (the Kafka broker):
# they run after the rest, one file at a time, so they never pull the broker
# from under another test.
vitest run --exclude '**/*.serial.test.ts' --reporter=default --reporter=json --outputFile.json=.run/vitest.json "$@" || status=$?
if find test -name '*.serial.test.ts' | grep -q .; then
  vitest run --no-file-parallelism --passWithNoTests --reporter=default --reporter=json --outputFile.json=.run/vitest-serial.json '.serial.test.ts' "$@" || status=$?
  bash deploy/kafka/broker.sh start >/dev/null
fi

# A plain closing line any CI can read: "N passed, N failed".
node -e '
const fs = require("fs");
let passed = 0, failed = 0, skipped = 0, total = 0;
for (const f of [".run/vitest.json", ".run/vitest-serial.json"]) {
  if (!fs.existsSync(f)) continue;
  const r = JSON.parse(fs.readFileSync(f, "utf8"));
  // A file that fails without a failed test of its own (it does not load, or its beforeAll throws and
  // its tests are reported skipped) counts as one failure.
  const broken = (r.testResults || []).filter((t) => t.status === "failed" && !(t.assertionResults || []).some((a) => a.status === "failed")).length;
  passed += r.numPassedTests; failed += r.numFailedTests + broken; total += r.numTotalTests + broken;
  skipped += (r.numPendingTests || 0) + (r.numTodoTests || 0);
}
console.log(`tests: ${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""));
if (total === 0 || failed > 0) process.exitCode = 1;
' || status=1
exit $status
