/**
 * The validation stage, last before forwarding: limits first (URL, headers,
 * content type, body size, JSON depth/keys, prototype-polluting keys), then
 * the operation's schemas (path parameters, query, headers, body).
 *
 * The body is read into memory (bounded by the limit) only when a schema
 * must check it; otherwise it streams to the service through a guard that
 * counts bytes and scans JSON as it flows and aborts the upload at the first
 * breach. Each check honours its own dry-run flag (limits.audit, a limits
 * route's audit, an operation's audit, unknownRoutes: audit) as well as
 * auditStages/mode: a dry-run breach is recorded as would_deny and the
 * remaining checks still run.
 */
import { CODES, PalisadeError, type Code } from '../errors/codes.ts';
import { BodyGuard, checkWhole, prefixed, readBody, takeComplete, type BodyViolation, type ReadResult } from '../limits/body.ts';
import { JsonScanner } from '../limits/json-scan.ts';
import { compileLimits, contentTypeAllowed, type RouteLimits } from '../limits/limits.ts';
import { bestRange, isJson, mediaTypeOf } from '../limits/media-type.ts';
import { judge } from '../pipeline/runner.ts';
import { CONTINUE, deny, type Deny, type RequestContext, type Stage, type StageExplanation, type Verdict, type StageBuilder } from '../pipeline/types.ts';
import { compilePathPattern } from '../policy/path-pattern.ts';
import { compileApi, type CompiledApi } from './api.ts';
import type { CompiledOperation } from './compile.ts';
import { fieldErrors, summarize, type FieldError } from './errors.ts';
import { headerObject, parseQuery, pathObject, queryObject } from './params.ts';
import { responseTap } from './response-check.ts';

type Validator = ((data: unknown) => boolean) & { errors?: unknown };

/** JSON bodies up to this size (by Content-Length) are read into memory rather than streamed. */
const SMALL_BODY_BYTES = 64 * 1024;

// What the client is told about a limit: which limit (its code and a fixed sentence), never the
// number, which would only tell a prober how much it may send; the number and the route rule go
// to the decision event (reason). A legitimate caller finds the limits in the API's documentation.
const TOO_LARGE = 'the request body is larger than this route accepts';

function bodyDeny(v: BodyViolation, rule: string | null): Deny {
  switch (v.kind) {
    case 'size':
      // Close the connection: the rest of an oversized upload is never read.
      return deny('BODY_TOO_LARGE', rule, { reason: `request body exceeds ${v.limit} bytes`, detail: TOO_LARGE, headers: { connection: 'close' } });
    case 'depth':
      return deny('BODY_LIMIT_EXCEEDED', rule, { reason: `JSON nesting deeper than ${v.limit}`, detail: 'the JSON body is nested deeper than this route accepts' });
    case 'keys':
      return deny('BODY_LIMIT_EXCEEDED', rule, { reason: `JSON body has more than ${v.limit} keys`, detail: 'the JSON body has more keys than this route accepts' });
    case 'forbidden-key':
      return deny('BODY_FORBIDDEN_KEY', rule, { reason: `JSON key ${v.key} is not allowed`, detail: 'the JSON body has a __proto__, constructor or prototype key' });
    case 'duplicate-key':
      // The key is the client's own text: recorded (cut), not echoed back.
      return deny('BODY_DUPLICATE_KEY', rule, { reason: v.key === null ? 'a JSON object has the same key twice' : `a JSON object has the key "${v.key.slice(0, 200)}" twice`, detail: 'a JSON object in the body has the same key twice' });
  }
}

/** The client's sentence for a request-shape limit (URL length, header count or bytes). */
const SHAPE_TEXT: Partial<Record<Code, string>> = {
  URL_TOO_LONG: 'the request target is longer than this service accepts',
  HEADERS_TOO_LARGE: 'the request has more header fields or header bytes than this service accepts',
};

function schemaDeny(op: CompiledOperation, errors: FieldError[]): Deny {
  return deny('SCHEMA_VIOLATION', op.op.id, { detail: summarize(errors), extensions: { errors } });
}

function checkParams(op: CompiledOperation, params: Record<string, string>, ctx: RequestContext): FieldError[] {
  const errors: FieldError[] = [];
  const specs = op.op.params;
  if (op.path && !op.path(pathObject(params, specs))) fieldErrors('/path', op.path.errors, errors);
  if (op.query) {
    const q = parseQuery(ctx.query);
    if (q === null) errors.push({ pointer: '/query', rule: 'encoding', message: 'has invalid percent-encoding' });
    else if (!op.query(queryObject(q, specs))) fieldErrors('/query', op.query.errors, errors);
  }
  if (op.headers && !op.headers(headerObject(ctx.headers, specs))) fieldErrors('/headers', op.headers.errors, errors);
  return errors;
}

/**
 * The stage's findings for one request. The stage goes on after a finding the runner does not
 * enforce (a dry-run rule, operation or limit; the policy's audit mode), so it hands each one
 * to the runner's judge, which decides and records a would_deny; the stage only says what it
 * found, and whether the rule that found it is itself in dry-run.
 */
class Findings {
  readonly #ctx: RequestContext;
  constructor(ctx: RequestContext) {
    this.#ctx = ctx;
  }
  /** Returns the deny when the runner enforces it; null when it was recorded as would_deny. */
  note(d: Deny, ruleDryRun: boolean): Deny | null {
    return judge(this.#ctx, 'validation', ruleDryRun ? { ...d, audit: true } : d) ? d : null;
  }
  finish(_ctx: RequestContext, enforced: Deny | null): Verdict {
    return enforced ?? CONTINUE;
  }
}

export const buildValidationStage: StageBuilder = (doc, cc) => {
  const limits = compileLimits(doc.spec.limits);
  const logger = cc.services.logger;
  const warnings: string[] = [];
  const api: CompiledApi | null = doc.spec.validation ? compileApi(doc.spec.validation, cc.baseDir, (m) => warnings.push(m)) : null;
  if (warnings.length > 0) logger.warn({ warnings: [...new Set(warnings)].slice(0, 20) }, 'API schema warnings (unknown formats are not checked)');
  if (api) {
    const templates: { template: string; methods: string[] }[] = [];
    for (const op of api.operations) {
      try {
        compilePathPattern(op.op.template);
        templates.push({ template: op.op.template, methods: [op.op.method] });
      } catch {
        // Templates with partial-segment parameters (/files/{name}.{ext}) are matched here only.
      }
    }
    cc.addRoutes(templates);
  }

  /** Reads the body (bounded), scans JSON, then parses and validates it when there is a schema. */
  function readAndCheck(ctx: RequestContext, f: Findings, rl: RouteLimits, op: CompiledOperation | null, kind: 'json' | 'form', validate: Validator | null): Verdict | Promise<Verdict> {
    const stream = ctx.bodyStream as NonNullable<RequestContext['bodyStream']>;
    const scanner = kind === 'json' ? new JsonScanner(rl.maxJsonDepth, rl.maxJsonKeys) : null;
    // Already complete (a stage before this one waited for keys or a signature): checked now, synchronously.
    const whole = takeComplete(stream);
    if (whole !== null) return checkBody(ctx, f, rl, op, kind, validate, stream, checkWhole(whole, rl.maxBodyBytes, scanner));
    return readBody(stream, rl.maxBodyBytes, scanner).then((r) => checkBody(ctx, f, rl, op, kind, validate, stream, r));
  }

  function checkBody(ctx: RequestContext, f: Findings, rl: RouteLimits, op: CompiledOperation | null, kind: 'json' | 'form', validate: Validator | null, stream: NonNullable<RequestContext['bodyStream']>, r: ReadResult): Verdict {
    if (r.kind === 'aborted') return f.finish(ctx, deny('REQUEST_TIMEOUT', null, { detail: 'the client stopped sending the request body' }));
    if (r.kind === 'violation') {
      const d = f.note(bodyDeny(r.violation, rl.rule), rl.audit);
      if (d) return f.finish(ctx, d);
      // Dry-run: forward what was read and the rest, unchecked.
      ctx.bodyStream = prefixed(r.chunks, stream);
      return f.finish(ctx, null);
    }
    ctx.body = r.body;
    ctx.bytesIn = r.body.length;
    if (validate === null) return f.finish(ctx, null);
    const opAudit = op?.op.audit ?? false;
    let data: unknown;
    if (kind === 'json') {
      try {
        // The scanner has already refused __proto__ and constructor.prototype keys. A byte order mark is allowed (RFC 8259 8.1: may be ignored).
        const text = r.body.toString('utf8');
        data = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
      } catch {
        return f.finish(ctx, f.note(deny('BODY_MALFORMED', op?.op.id ?? null, { detail: 'request body is not valid JSON' }), opAudit));
      }
    } else {
      const q = parseQuery(r.body.toString('utf8'));
      if (q === null) return f.finish(ctx, f.note(deny('BODY_MALFORMED', op?.op.id ?? null, { detail: 'form body has invalid percent-encoding' }), opAudit));
      data = queryObject(q, null);
    }
    if (op && !validate(data)) {
      const errors = fieldErrors('/body', validate.errors as Parameters<typeof fieldErrors>[1]);
      return f.finish(ctx, f.note(schemaDeny(op, errors), opAudit));
    }
    return f.finish(ctx, null);
  }

  const stage: Stage = {
    name: 'validation',
    run(ctx: RequestContext): Verdict | Promise<Verdict> {
      const f = new Findings(ctx);
      let d: Deny | null;
      const rl = limits.forRoute(ctx.method, ctx.path);

      const shape = limits.checkShape(ctx.path, ctx.query, ctx.headers);
      if (shape && (d = f.note(deny(shape.code, null, { reason: shape.reason, ...(SHAPE_TEXT[shape.code] ? { detail: SHAPE_TEXT[shape.code] } : {}) }), limits.audit))) return f.finish(ctx, d);

      let op: CompiledOperation | null = null;
      let params: Record<string, string> = {};
      if (api) {
        const m = api.table.match(ctx.method, ctx.path);
        if (m) {
          op = m.value;
          params = m.params;
        } else if (api.unknownRoutes !== 'allow') {
          // Whether the path exists for another method is for operators: told to the client, it
          // would map the API for a prober one method at a time.
          const reason = api.table.hasPath(ctx.path) ? `the API declares no ${ctx.method} operation for this path` : 'no operation of the API matches this path';
          if ((d = f.note(deny('ROUTE_UNKNOWN', null, { reason, detail: 'no operation of the API matches this method and path' }), api.unknownRoutes === 'audit'))) return f.finish(ctx, d);
        }
      }
      const opAudit = op?.op.audit ?? false;
      const limitAudit = rl.audit;

      const te = ctx.headers['transfer-encoding'];
      const cl = ctx.headers['content-length'];
      const hasBody = ctx.bodyStream !== null && (te !== undefined || (cl !== undefined && cl !== '0'));
      const media = mediaTypeOf(ctx.headers['content-type']);
      let range: string | null = null;
      let sizeNoted = false;
      let length = -1;
      if (hasBody) {
        if (!contentTypeAllowed(rl, media) && (d = f.note(deny('CONTENT_TYPE_NOT_ALLOWED', rl.rule, { reason: `content type ${(media ?? '(none)').slice(0, 100)} is not allowed here; allowed: ${rl.contentTypes.join(', ')}`, detail: `the content type is not accepted here; accepted: ${rl.contentTypes.join(', ')}` }), limitAudit))) return f.finish(ctx, d);
        if (op) {
          if (!op.body) {
            if ((d = f.note(schemaDeny(op, [{ pointer: '/body', rule: 'absent', message: 'the operation declares no request body' }]), opAudit))) return f.finish(ctx, d);
          } else {
            range = media === null ? null : bestRange(media, op.body.ranges);
            if (range === null && (d = f.note(deny('CONTENT_TYPE_NOT_ALLOWED', op.op.id, { reason: `content type ${(media ?? '(none)').slice(0, 100)} is not declared; declared: ${op.body.ranges.join(', ')}`, detail: `the content type is not declared for this operation; declared: ${op.body.ranges.join(', ')}` }), opAudit))) return f.finish(ctx, d);
          }
        }
        length = cl === undefined ? -1 : Number(cl);
        if (length > rl.maxBodyBytes && (d = f.note(bodyDeny({ kind: 'size', limit: rl.maxBodyBytes }, rl.rule), limitAudit))) return f.finish(ctx, d);
        // Already recorded (dry-run): the body checks below must not report the size again.
        if (length > rl.maxBodyBytes) sizeNoted = true;
      } else if (op?.body?.required && (d = f.note(schemaDeny(op, [{ pointer: '/body', rule: 'required', message: 'a request body is required' }]), opAudit))) {
        return f.finish(ctx, d);
      }

      if (op) {
        const errors = checkParams(op, params, ctx);
        if (errors.length > 0 && (d = f.note(schemaDeny(op, errors), opAudit))) return f.finish(ctx, d);
        if (api?.responses.audit) ctx.responseTap = responseTap(op, ctx, api.responses.maxBytes, logger);
      }

      if (hasBody) {
        const bv = op && range !== null ? op.body?.byRange.get(range) : undefined;
        if (bv?.validate && bv.kind !== 'none' && !sizeNoted) return readAndCheck(ctx, f, rl, op, bv.kind, bv.validate);
        const json = media !== null && isJson(media);
        // A small JSON body is read whole and scanned, then forwarded from memory: a
        // stream wrapper per request costs more CPU than the copy (bench/run.ts).
        if (json && te === undefined && length <= SMALL_BODY_BYTES && !sizeNoted) return readAndCheck(ctx, f, rl, op, 'json', null);
        // With a Content-Length within the limit Node's framing already bounds the body; count only chunked ones.
        if (json || te !== undefined) {
          const guard = new BodyGuard(ctx.bodyStream as NonNullable<RequestContext['bodyStream']>, sizeNoted ? Infinity : rl.maxBodyBytes, json ? new JsonScanner(rl.maxJsonDepth, rl.maxJsonKeys) : null, (v) => {
            const bd = bodyDeny(v, rl.rule);
            // Found after the runner is done (the body streams to the upstream): judged the same way.
            if (!judge(ctx, 'validation', limitAudit ? { ...bd, audit: true } : bd)) return null;
            // The message is the operator's reason; the client's sentence rides along as clientDetail.
            return Object.assign(new PalisadeError(bd.code, bd.reason ?? CODES[bd.code].title), { stage: 'validation' as const, rule: bd.rule, clientDetail: bd.detail });
          });
          guard.once('end', () => {
            ctx.bytesIn = guard.bytes;
          });
          ctx.bodyStream = guard;
        }
      }
      return f.finish(ctx, null);
    },

    explain(req): StageExplanation {
      const trace: string[] = [limits.describe(req.method, req.path)];
      let result: Deny | null = null;
      if (api) {
        const m = api.table.match(req.method, req.path);
        if (m) {
          const op = m.value;
          const parts = [op.path && 'path parameters', op.query && 'query', op.headers && 'headers', op.body && `body (${op.body.ranges.join(', ')}${op.body.required ? ', required' : ''})`].filter(Boolean);
          trace.push(`operation "${op.op.id}" (${op.op.where}) checks ${parts.length ? parts.join(', ') : 'nothing but the route'}${op.op.audit ? ' (audit: would deny)' : ''}`);
          // Path parameters are in the path itself, so they can be checked from a sample or a recording alone.
          if (op.path && !op.path(pathObject(m.params, op.op.params))) {
            const errors = fieldErrors('/path', op.path.errors);
            trace.push(`path parameters refused: ${summarize(errors)}`);
            result = { ...schemaDeny(op, errors), audit: op.op.audit };
          }
          if (api.responses.audit && op.responses) trace.push(`responses are checked in audit mode${api.responses.undeclaredFields ? ', undeclared fields reported' : ''}`);
        } else if (api.unknownRoutes === 'allow') trace.push(`no operation matches ${req.method} ${req.path}; unknownRoutes is allow`);
        else {
          trace.push(`no operation matches ${req.method} ${req.path} (${api.sources.join('; ')}); unknownRoutes is ${api.unknownRoutes}`);
          result = deny('ROUTE_UNKNOWN', null, { audit: api.unknownRoutes === 'audit' });
        }
      } else trace.push('no spec.validation: request schemas are not checked');
      return { trace, deny: result };
    },
  };
  return stage;
};
