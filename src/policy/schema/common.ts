/** Schema pieces shared by several policy sections. */

export const pathPatternSchema = {
  type: 'string',
  pattern: '^/',
  description: 'Path template: literal segments, {param} (one segment, captured), * (one segment), ** (rest, last only).',
} as const;

export const methodsSchema = {
  type: 'array',
  items: { type: 'string', enum: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', '*'] },
  minItems: 1,
  uniqueItems: true,
  description: 'HTTP methods; "*" means any. Default ["*"].',
} as const;

export const idSchema = {
  type: 'string',
  pattern: '^[a-z0-9][a-z0-9._-]{0,62}$',
  description: 'Stable rule id (lowercase, digits, . _ -), recorded in every decision the rule makes.',
} as const;
