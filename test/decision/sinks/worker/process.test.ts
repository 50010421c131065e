// The real `palisade sidecar` process with the NDJSON sink, on its own thread
// and on the request thread (what the default, auto, picks for NDJSON): SIGTERM under load loses nothing
// (every decided response has its event, written before the process exits),
// to standard output as well as to a file.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mtlsAgents, publicItemsPolicy, send, until } from '../../../support/harness.ts';
import { sidecarProcessBed } from '../../../support/sidecar-process.ts';

describe('palisade sidecar process with the NDJSON sink', () => {
  const bed = sidecarProcessBed(publicItemsPolicy('ndjson-process'));

  const cases = [
    { thread: 'worker', target: 'stdout' },
    { thread: 'worker', target: 'file' },
    { thread: 'main', target: 'file' },
    { thread: 'auto', target: 'stdout' },
  ] as const;
  for (const { thread, target } of cases) {
    it(`SIGTERM during load, sink on the ${thread} thread, to ${target}: every decided response has its event`, { timeout: 60_000 }, async () => {
      const file = join(bed.pki.dir, `decisions-${thread}-${target}.ndjson`);
      const p = await bed.start(
        {
          ...bed.env(),
          PALISADE_LOG_LEVEL: 'info',
          PALISADE_DECISIONS_THREAD: thread,
          PALISADE_DECISIONS_FILE: target === 'stdout' ? 'stdout' : file,
        },
        30_000,
        { captureStdout: true },
      );
      const clients = await mtlsAgents(bed.pki, 4, 'n');
      const answered = new Set<string>();
      let running = true;
      let failed = 0;
      const load = clients.map(async (agent, c) => {
        for (let seq = 0; running; seq++) {
          try {
            const res = await send(agent, `${p.base}/items/${c}-${seq}`);
            // While closing, fastify answers 503 before any stage runs: not a decision (no request id).
            const id = res.headers['x-request-id'];
            if (typeof id === 'string') answered.add(id);
          } catch {
            if (++failed > 50) return; // the listener is gone
            await new Promise((r) => setTimeout(r, 5));
          }
        }
      });
      await until(() => answered.size > 300, 30_000);
      p.child.kill('SIGTERM');
      const exit = await p.exited;
      running = false;
      await Promise.all(load);
      await Promise.all(clients.map((a) => a.close()));
      expect(exit, p.log.join('\n').slice(-4000)).toEqual({ code: 0, signal: null });
      // auto puts the NDJSON sink on the request thread; the start says where it runs.
      const opening = p.log.find((l) => l.includes('decision sink opening'));
      expect(opening, p.log.join('\n').slice(-4000)).toContain(`"thread":"${thread === 'auto' ? 'main' : thread}"`);

      const text = target === 'stdout' ? p.stdout() : readFileSync(file, 'utf8');
      expect(text.endsWith('\n'), JSON.stringify(text.slice(-300)) + ' length ' + text.length).toBe(true);
      const events = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { class_uid: number; http_request: { uid: string } });
      const ids = new Set(events.map((e) => e.http_request.uid));
      expect(events.every((e) => e.class_uid === 4002)).toBe(true);
      expect(ids.size).toBe(events.length); // exactly one event per request
      for (const id of answered) expect(ids.has(id), `no event for request ${id}`).toBe(true);
      // Nothing lost by the sidecar's own count either: its last word on the sink.
      const closed = p.log.map((l) => JSON.parse(l) as { msg?: string; accepted?: number; delivered?: number; dropped?: number; buffered?: number }).find((l) => l.msg === 'decision sink closed');
      expect(closed).toMatchObject({ accepted: events.length, delivered: events.length, dropped: 0, buffered: 0 });
    });
  }
});
