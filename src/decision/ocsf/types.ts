/**
 * The OCSF 1.8.0 objects Palisade emits, typed as far as we fill them. Names
 * and shapes follow the OCSF dictionary exactly (snake_case, timestamps in
 * epoch milliseconds); absent attributes are omitted, never null. The JSON
 * Schemas in ./schema/ say the same thing to consumers, and
 * test/decision/ocsf/ checks both against the published schema data.
 */

/** OCSF timestamp_t: epoch milliseconds. */
export type OcsfTimestamp = number;

export interface OcsfFeature {
  readonly name: string;
}

export interface OcsfProduct {
  readonly name: string;
  readonly vendor_name: string;
  readonly version: string;
  readonly feature?: OcsfFeature;
}

export interface OcsfMetadata {
  readonly version: string;
  readonly product: OcsfProduct;
  /** Unique event id: consumers de-duplicate on it. */
  readonly uid: string;
  readonly correlation_uid?: string;
  readonly log_name: string;
  readonly profiles: readonly string[];
  readonly event_code?: string;
}

export interface OcsfNetworkEndpoint {
  readonly ip?: string;
  readonly port?: number;
  /** Only when the address is unknown (the socket was gone): OCSF needs ip or a name. */
  readonly svc_name?: string;
}

export interface OcsfUrl {
  readonly url_string?: string;
  readonly scheme?: string;
  readonly hostname?: string;
  readonly port?: number;
  readonly path?: string;
}

export interface OcsfHttpHeader {
  readonly name: string;
  readonly value: string;
}

export interface OcsfHttpRequest {
  readonly uid?: string;
  readonly http_method?: string;
  readonly url?: OcsfUrl;
  readonly version?: string;
  readonly user_agent?: string;
  readonly x_forwarded_for?: readonly string[];
  readonly http_headers?: readonly OcsfHttpHeader[];
  readonly body_length?: number;
}

export interface OcsfHttpResponse {
  readonly code: number;
  readonly length?: number;
  readonly latency?: number;
}

export interface OcsfGroup {
  readonly name: string;
}

export interface OcsfUser {
  readonly uid?: string;
  readonly name?: string;
  readonly type_id?: number;
  readonly type?: string;
  readonly groups?: readonly OcsfGroup[];
}

export interface OcsfIdp {
  readonly name: string;
  readonly issuer?: string;
}

export interface OcsfSession {
  readonly uid?: string;
  readonly issuer?: string;
  readonly expiration_time?: OcsfTimestamp;
}

export interface OcsfActor {
  readonly user?: OcsfUser;
  readonly app_uid?: string;
  readonly idp?: OcsfIdp;
  readonly session?: OcsfSession;
}

export interface OcsfFingerprint {
  readonly algorithm_id: number;
  readonly algorithm?: string;
  readonly value: string;
}

export interface OcsfSan {
  readonly name: string;
  readonly type: string;
}

export interface OcsfCertificate {
  readonly subject?: string;
  readonly issuer: string;
  readonly serial_number: string;
  readonly fingerprints?: readonly OcsfFingerprint[];
  readonly created_time?: OcsfTimestamp;
  readonly expiration_time?: OcsfTimestamp;
  readonly sans?: readonly OcsfSan[];
}

export interface OcsfTls {
  readonly version: string;
  readonly cipher?: string;
  readonly sni?: string;
  readonly certificate?: OcsfCertificate;
}

export interface OcsfPolicy {
  readonly name?: string;
  readonly uid?: string;
  readonly version?: string;
  readonly is_applied?: boolean;
  /** Palisade: whether the policy's signature was verified before it was applied, and by which key id. */
  readonly data?: { readonly signature: { readonly verified: boolean; readonly key_id?: string } };
}

export interface OcsfFirewallRule {
  readonly uid: string;
  readonly name: string;
}

export interface OcsfTrace {
  readonly uid: string;
}

export interface OcsfObservable {
  readonly name: string;
  readonly type_id: number;
  readonly type: string;
  readonly value: string;
}

export interface OcsfConnectionInfo {
  readonly direction_id: number;
  readonly direction: string;
  readonly protocol_num: number;
  readonly protocol_name: string;
  readonly protocol_ver_id?: number;
  readonly protocol_ver?: string;
}

/** Fields every OCSF event class has (base_event). */
export interface OcsfBaseEvent {
  readonly activity_id: number;
  readonly activity_name: string;
  readonly category_uid: number;
  readonly category_name: string;
  readonly class_uid: number;
  readonly class_name: string;
  readonly type_uid: number;
  readonly type_name: string;
  readonly severity_id: number;
  readonly severity: string;
  readonly time: OcsfTimestamp;
  readonly timezone_offset?: number;
  readonly message?: string;
  readonly metadata: OcsfMetadata;
  readonly observables?: readonly OcsfObservable[];
  readonly unmapped?: Readonly<Record<string, unknown>>;
}
