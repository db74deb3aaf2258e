import type { AuditEntry } from '../../generated/sqlite/client.js';
import { builder } from '../builder.js';
import { requireViewer } from '../context.js';

const AuditEntryType = builder.objectRef<AuditEntry>('AuditEntry').implement({
  description: 'One state-changing action: who took it, when, from where, on what, and how it ended.',
  fields: (t) => ({
    id: t.exposeID('id'),
    at: t.expose('at', { type: 'DateTime' }),
    actorId: t.exposeID('actorId', { nullable: true, description: 'null for a failed login of an unknown email' }),
    action: t.exposeString('action', { description: 'e.g. auth.login, job.submit, user.update (README: "Audit trail")' }),
    targetType: t.exposeString('targetType', { nullable: true, description: 'user, job, batch, token, session or limits' }),
    targetId: t.exposeID('targetId', { nullable: true }),
    outcome: t.exposeString('outcome', { description: 'success, failure (bad input, conflict, wrong password) or denied (no right to it)' }),
    clientAddress: t.exposeString('clientAddress', { nullable: true }),
  }),
});

builder.queryField('auditLog', (t) =>
  t.connection({
    type: AuditEntryType,
    authScopes: { authenticated: true },
    description: 'Admins: the audit trail, newest first, optionally of one actor, action or target.',
    args: { actorId: t.arg.id(), action: t.arg.string(), targetId: t.arg.id() },
    complexity: (args) => ({ field: 1, multiplier: Math.min(args.first ?? 100, 1000) / 10 }),
    resolve: (_root, args, ctx) =>
      ctx.services.audit.list(requireViewer(ctx), {
        actorId: args.actorId == null ? null : String(args.actorId),
        action: args.action,
        targetId: args.targetId == null ? null : String(args.targetId),
        first: args.first,
        after: args.after,
      }),
  }),
);
