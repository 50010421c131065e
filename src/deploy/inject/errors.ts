/**
 * Errors of the injector. Each has a stable code so scripts (and the webhook's
 * denial message) can tell a bad manifest from a bad option; the message says
 * what is wrong, where, and how to fix it.
 */
export type InjectErrorCode =
  | 'INJECT_OPTIONS_INVALID'
  | 'INJECT_YAML_INVALID'
  | 'INJECT_INPUT_TOO_LARGE'
  | 'INJECT_NOT_AN_OBJECT'
  | 'INJECT_KIND_UNSUPPORTED'
  | 'INJECT_NAME_CONFLICT'
  | 'INJECT_PORT_CONFLICT'
  | 'INJECT_UPSTREAM_UNKNOWN'
  | 'INJECT_ANNOTATION_INVALID'
  | 'INJECT_POD_UNSUPPORTED';

export class InjectError extends Error {
  readonly code: InjectErrorCode;
  constructor(code: InjectErrorCode, message: string) {
    super(message);
    this.name = 'InjectError';
    this.code = code;
  }
}
