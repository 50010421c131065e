/**
 * The fleet's status from the sidecars topic: the latest record per pod (a tombstone removes
 * it), grouped by workload, with which policy hash each live sidecar runs. Drift: a workload
 * whose live sidecars do not all run the same policy hash. Stale: a sidecar whose last record
 * is older than its publish interval allows; it is listed, but leaves the counts. Records
 * older than `forgetAfterMs` (a pod gone without a tombstone, long ago) are not shown.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { readToEnd } from '../kafka/read-to-end.ts';
import { decodeStatus, type SidecarStatus } from './status.ts';

export interface FleetOptions {
  /** A record older than this is stale, ms; default 3 publish intervals, at least 15 s. */
  readonly staleAfterMs?: number;
  /** A stale record older than this is left out, ms; default 1 h. */
  readonly forgetAfterMs?: number;
  readonly now?: number;
}

export interface PolicyGroup {
  readonly hash: string | null;
  readonly name: string | null;
  readonly version: string | null;
  readonly verified: boolean;
  readonly keyIds: readonly string[];
  readonly pods: readonly string[];
}

export interface WorkloadStatus {
  readonly namespace: string;
  readonly workload: string;
  /** Live sidecars. */
  readonly sidecars: number;
  /** One entry per policy hash the live sidecars run, most pods first. */
  readonly policies: readonly PolicyGroup[];
  readonly drift: boolean;
  readonly stale: readonly { readonly pod: string; readonly lastSeen: string }[];
  readonly refused: readonly { readonly pod: string; readonly code: string; readonly reason: string; readonly at: string }[];
}

export interface FleetReport {
  readonly workloads: readonly WorkloadStatus[];
  /** True when any workload drifts. */
  readonly drift: boolean;
}

/** Reads the sidecars topic to its end: the latest record per pod. */
export async function readFleet(kafka: Kafka, topic: string, timeoutMs = 30_000): Promise<SidecarStatus[]> {
  const latest = new Map<string, SidecarStatus | null>();
  const read = await readToEnd({
    kafka,
    topic,
    groupId: `palisade-fleet-cli-${randomUUID()}`,
    timeoutMs,
    onMessage(m) {
      const key = m.key?.toString('utf8');
      if (key === undefined) return;
      if (m.value === null) latest.set(key, null);
      else {
        const s = decodeStatus(m.value);
        if (s) latest.set(key, s);
      }
    },
  });
  if (!read.complete) throw new Error(`reading ${topic} timed out after ${timeoutMs} ms`);
  return [...latest.values()].filter((s): s is SidecarStatus => s !== null);
}

/** The records of sidecars seen within their stale limit (the ones that count). */
export function liveRecords(records: readonly SidecarStatus[], o: FleetOptions = {}): SidecarStatus[] {
  const now = o.now ?? Date.now();
  return records.filter((r) => now - Date.parse(r.lastSeen) <= (o.staleAfterMs ?? Math.max(3 * (r.intervalMs || 5000), 15_000)));
}

export function fleetReport(records: readonly SidecarStatus[], o: FleetOptions = {}): FleetReport {
  const now = o.now ?? Date.now();
  const forget = o.forgetAfterMs ?? 3_600_000;
  const byWorkload = new Map<string, SidecarStatus[]>();
  for (const r of records) {
    const k = `${r.namespace}\u0000${r.workload}`;
    const list = byWorkload.get(k) ?? [];
    list.push(r);
    byWorkload.set(k, list);
  }
  const workloads: WorkloadStatus[] = [];
  for (const list of byWorkload.values()) {
    const live: SidecarStatus[] = [];
    const stale: { pod: string; lastSeen: string }[] = [];
    for (const r of list) {
      const age = now - Date.parse(r.lastSeen);
      const staleAfter = o.staleAfterMs ?? Math.max(3 * (r.intervalMs || 5000), 15_000);
      if (age <= staleAfter) live.push(r);
      else if (age <= forget) stale.push({ pod: r.pod, lastSeen: r.lastSeen });
    }
    if (live.length === 0 && stale.length === 0) continue;
    const groups = new Map<string, { hash: string | null; name: string | null; version: string | null; verified: boolean; keyIds: Set<string>; pods: string[] }>();
    for (const r of live) {
      const hash = r.policy?.hash ?? null;
      const g = groups.get(hash ?? '') ?? { hash, name: r.policy?.name ?? null, version: r.policy?.version ?? null, verified: true, keyIds: new Set<string>(), pods: [] };
      g.pods.push(r.pod);
      g.verified &&= r.policy?.verified === true;
      if (r.policy?.keyId) g.keyIds.add(r.policy.keyId);
      groups.set(hash ?? '', g);
    }
    const policies = [...groups.values()]
      .map((g) => ({ ...g, keyIds: [...g.keyIds].sort(), pods: g.pods.sort() }))
      .sort((a, b) => b.pods.length - a.pods.length || String(a.hash).localeCompare(String(b.hash)));
    const first = list[0]!;
    workloads.push({
      namespace: first.namespace,
      workload: first.workload,
      sidecars: live.length,
      policies,
      drift: policies.length > 1,
      stale: stale.sort((a, b) => a.pod.localeCompare(b.pod)),
      refused: live
        .filter((r) => r.refused !== null)
        .map((r) => ({ pod: r.pod, ...r.refused! }))
        .sort((a, b) => a.pod.localeCompare(b.pod)),
    });
  }
  workloads.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.workload.localeCompare(b.workload));
  return { workloads, drift: workloads.some((w) => w.drift) };
}
