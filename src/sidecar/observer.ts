/**
 * Hooks for metrics, tracing and the embedded detector. Every method is
 * optional; each is called synchronously, so implementations must be cheap.
 */
import type { CompiledPolicy } from '../policy/compiled.ts';
import type { DecisionRecord } from '../decision/record.ts';

export interface SidecarObserver {
  onDecision?(record: DecisionRecord): void;
  /** A request arrived (HTTP parsed); paired with onRequestEnd once its decision is out. */
  onRequestStart?(): void;
  onRequestEnd?(): void;
  onPolicyLoaded?(policy: CompiledPolicy): void;
  onPolicyRefused?(error: Error): void;
  onTlsReloaded?(): void;
  onTlsRefused?(error: Error): void;
  /** A TLS handshake failed; reason is a short stable word (no peer data). */
  onTlsHandshakeError?(reason: string): void;
}
