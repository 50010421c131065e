/**
 * Publishes this sidecar's status record (status.ts) on the sidecars topic: at start, at
 * each change (looked for every 250 ms: policy applied or refused, block-list position), and
 * every intervalMs otherwise, so a reader can tell a live sidecar from a dead one; a
 * tombstone at clean shutdown, so a stopped pod leaves the count at once.
 *
 * Never on the request path and never fatal: a broker that is down delays the record, and
 * the sidecar goes on serving; the next tick tries again.
 */
import type { Kafka, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { ensureTopics, type TopicSpec } from '../kafka/topics.ts';
import { statusKey, STATUS_SCHEMA, type PodIdentity, type SidecarStatus } from './status.ts';

export interface StatusPublisherOptions {
  readonly kafka: Kafka;
  readonly topic: TopicSpec;
  readonly createTopic: boolean;
  readonly identity: PodIdentity;
  readonly version: string;
  readonly intervalMs: number;
  /** What changes: read every tick. */
  readonly facts: () => Pick<SidecarStatus, 'policy' | 'refused' | 'blocklistTopic' | 'blocklistPosition' | 'blocklistApplied'>;
  readonly logger: Logger;
  /** How often changes are looked for, ms (default 250: a JSON comparison of three small facts). */
  readonly checkMs?: number;
}

export interface StatusPublisher {
  /** Publishes now if anything changed (the caller knows something did). */
  poke(): void;
  /** Stops, then publishes the tombstone (a clean shutdown). */
  close(): Promise<void>;
}

export function startStatusPublisher(o: StatusPublisherOptions): StatusPublisher {
  const log = o.logger.child({ component: 'fleet-status' });
  const key = statusKey(o.identity);
  const startedAt = new Date().toISOString();
  let producer: Producer | null = null;
  let connecting: Promise<Producer> | null = null;
  let lastFacts = '';
  let lastSent = 0;
  let sending: Promise<void> | null = null;
  let closed = false;
  let warned = false;

  function connect(): Promise<Producer> {
    connecting ??= (async () => {
      if (o.createTopic) {
        const admin = o.kafka.admin();
        await admin.connect();
        try {
          await ensureTopics(admin, [o.topic], log);
        } finally {
          await admin.disconnect();
        }
      }
      const p = o.kafka.producer({ allowAutoTopicCreation: false });
      await p.connect();
      producer = p;
      // Closed while connecting (a slow broker at shutdown): nothing else will disconnect it.
      if (closed && lastSent === 0) await p.disconnect();
      return p;
    })().catch((err: unknown) => {
      connecting = null;
      throw err;
    });
    return connecting;
  }

  async function send(value: string | null): Promise<void> {
    const p = await connect();
    await p.send({ topic: o.topic.name, acks: -1, messages: [{ key, value }] });
  }

  function tick(force: boolean): void {
    if (closed || sending) return;
    const facts = o.facts();
    const f = JSON.stringify(facts);
    const now = Date.now();
    if (!force && f === lastFacts && now - lastSent < o.intervalMs) return;
    const record: SidecarStatus = { schema: STATUS_SCHEMA, ...o.identity, version: o.version, ...facts, startedAt, lastSeen: new Date(now).toISOString(), intervalMs: o.intervalMs };
    sending = send(JSON.stringify(record))
      .then(() => {
        lastFacts = f;
        lastSent = now;
        if (warned) log.info('status record published again');
        warned = false;
      })
      .catch((err: unknown) => {
        if (!warned) log.warn({ err: (err as Error).message }, 'status record not published; retrying');
        warned = true;
      })
      .finally(() => {
        sending = null;
      });
  }

  const timer = setInterval(() => tick(false), o.checkMs ?? 250);
  timer.unref();
  tick(true);

  return {
    poke: () => tick(false),
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      // Bounded: a broker that is down must not hold the shutdown (its grace period is the drain's).
      const ok = await within(TOMBSTONE_WAIT_MS, (async () => {
        await sending;
        // A tombstone: this pod leaves the fleet's count now, not when it goes stale.
        if (lastSent > 0) await send(null);
      })());
      if (!ok) log.warn('status tombstone not published; the record will go stale');
      await within(TOMBSTONE_WAIT_MS, (producer as Producer | null)?.disconnect() ?? Promise.resolve());
    },
  };
}

const TOMBSTONE_WAIT_MS = 2000;

/** True if `p` settles fulfilled within `ms`; never rejects. */
async function within(ms: number, p: Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((r) => {
    timer = setTimeout(() => r(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true, () => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
