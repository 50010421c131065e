/** A logger (the project's own, redaction included) whose output a test reads back. */
import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { createLogger } from '../../src/log/logger.ts';

export interface CapturedLog {
  readonly logger: Logger;
  /** Everything written, as text. */
  text(): string;
  /** One string per line written. */
  lines(): string[];
  /** Each line parsed (pino writes one JSON object per line). */
  records(): Record<string, unknown>[];
}

export function captureLog(level = 'debug'): CapturedLog {
  let text = '';
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString('utf8');
      cb();
    },
  });
  const lines = () => text.split('\n').filter(Boolean);
  return { logger: createLogger({ level }, out), text: () => text, lines, records: () => lines().map((l) => JSON.parse(l) as Record<string, unknown>) };
}
