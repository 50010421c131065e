/**
 * spec.authorization: roles bound to subjects, and rules of methods x paths x
 * hosts that grant (or deny) roles. Explicit deny rules win; anything no allow
 * rule matches is denied.
 */
import { idSchema, methodsSchema, pathPatternSchema } from './common.ts';

/** Who holds a role. Exactly one matcher per entry; an entry matches when it holds. */
const subjectSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  maxProperties: 1,
  description: 'One matcher: spiffeId (exact, or a prefix ending in "/*"), subject (JWT sub), scope, group, clientId, or claim.',
  properties: {
    spiffeId: { type: 'string', pattern: '^spiffe://' },
    subject: { type: 'string', minLength: 1 },
    scope: { type: 'string', minLength: 1 },
    group: { type: 'string', minLength: 1 },
    clientId: { type: 'string', minLength: 1 },
    claim: {
      type: 'object',
      additionalProperties: false,
      required: ['name'],
      properties: {
        name: { type: 'string', minLength: 1, description: 'Claim name; dots walk into nested objects (org.id).' },
        equals: { type: ['string', 'number', 'boolean'] },
        includes: { type: ['string', 'number'], description: 'The claim is an array (or space-separated string) containing this value.' },
      },
      oneOf: [{ required: ['equals'] }, { required: ['includes'] }],
    },
  },
} as const;

const conditionSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['claim'],
  description: 'A condition on the identity\'s claims; all conditions of a rule must hold.',
  properties: {
    claim: { type: 'string', minLength: 1, description: 'Claim name; dots walk into nested objects.' },
    equalsParam: { type: 'string', minLength: 1, description: 'Name of a path parameter of the rule\'s template; the claim must equal it (tenant isolation).' },
    equals: { type: ['string', 'number', 'boolean'] },
    in: { type: 'array', items: { type: ['string', 'number', 'boolean'] }, minItems: 1 },
  },
  oneOf: [{ required: ['equalsParam'] }, { required: ['equals'] }, { required: ['in'] }],
} as const;

const ruleSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'paths'],
  properties: {
    id: idSchema,
    effect: { type: 'string', enum: ['allow', 'deny'], default: 'allow', description: 'allow grants; deny refuses and wins over any allow. Default allow.' },
    methods: { ...methodsSchema, default: ['*'] },
    paths: { type: 'array', items: pathPatternSchema, minItems: 1 },
    hosts: { type: 'array', items: { type: 'string', minLength: 1 }, description: 'Host header values (without port); "*.example.com" matches one label. Default: any host.' },
    roles: { type: 'array', items: { type: 'string' }, description: 'Any of these roles is enough. For deny rules: who is denied (default everyone).' },
    authenticated: { type: 'boolean', default: false, description: 'Allow any authenticated identity, without a role. Default false.' },
    public: { type: 'boolean', default: false, description: 'Allow without any identity (health checks, public docs). Default false.' },
    when: { type: 'array', items: conditionSchema, description: 'Extra conditions on claims; all must hold.' },
    audit: { type: 'boolean', default: false, description: 'Dry-run this rule: a deny it causes is recorded as would_deny, not enforced. Default false.' },
  },
} as const;

export const authorizationSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    roles: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'subjects'],
        properties: {
          name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]*$' },
          subjects: { type: 'array', items: subjectSchema, minItems: 1 },
        },
      },
    },
    rules: { type: 'array', default: [], items: ruleSchema },
  },
} as const;
