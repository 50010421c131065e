/** The authz stage: applies spec.authorization to the request. */
import { CONTINUE, deny, type Stage, type StageBuilder } from '../pipeline/types.ts';
import { compileAuthorization } from './evaluate.ts';

export const buildAuthzStage: StageBuilder = (doc, cc) => {
  const authz = compileAuthorization(doc.spec.authorization);
  cc.addRoutes(authz.templates);
  const stage: Stage = {
    name: 'authz',
    run(ctx) {
      const r = authz.evaluate({ method: ctx.method, path: ctx.path, host: ctx.host, identity: ctx.identity });
      if (r.allow) {
        ctx.allowRule = r.rule;
        return CONTINUE;
      }
      return deny(r.code ?? 'AUTHZ_NO_MATCHING_RULE', r.rule, { audit: r.audit });
    },
  };
  return stage;
};
