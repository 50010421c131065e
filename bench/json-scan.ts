/**
 * CPU cost of the streaming JSON scanner (src/limits/json-scan.ts) on the
 * benchmark's 1 KB order body, whole and in small chunks, beside JSON.parse
 * of the same text for scale. Nanoseconds per body, best of 5 rounds.
 *
 *   node bench/json-scan.ts [iterations]
 */
import { JsonScanner } from '../src/limits/json-scan.ts';
import { orderBody } from './lib/fixtures.ts';

const N = Number(process.argv[2] ?? 200_000);
const text = orderBody();
const body = Buffer.from(text);
const chunks = Array.from({ length: Math.ceil(body.length / 64) }, (_, i) => body.subarray(i * 64, i * 64 + 64));
// Many small objects in an array: the shape where per-object bookkeeping costs most.
const list = Buffer.from(JSON.stringify(Array.from({ length: 40 }, (_, i) => ({ id: i, sku: `S-${i}`, qty: 1 }))));

function time(name: string, bytes: number, f: () => unknown): void {
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) f();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / N);
  }
  console.log(`${name.padEnd(34)} ${best.toFixed(0).padStart(6)} ns/body (${bytes} B)`);
}

let sink: unknown = null;
time('scan, one chunk', body.length, () => (sink = new JsonScanner(32, 10000).push(body)));
time('scan, 64 B chunks', body.length, () => {
  const s = new JsonScanner(32, 10000);
  for (const c of chunks) s.push(c);
  return (sink = s.violation);
});
time('scan, 40 small objects', list.length, () => (sink = new JsonScanner(32, 10000).push(list)));
time('JSON.parse (for scale)', body.length, () => (sink = JSON.parse(text)));
if (sink === undefined) console.log('');
