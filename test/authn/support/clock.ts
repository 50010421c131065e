/** A controllable clock for services.now: time passes only when a test says so. */
import { createLogger } from '../../../src/log/logger.ts';
import { createServices } from '../../../src/sidecar/compose.ts';
import type { Services } from '../../../src/pipeline/services.ts';

export interface TestClock {
  now(): number;
  advance(ms: number): void;
}

export function testClock(start = Date.now()): TestClock {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

export function servicesWithClock(clock: TestClock): Services {
  return createServices(createLogger({ level: 'silent' }), clock.now);
}
