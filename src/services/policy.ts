// Authorization, decided here and nowhere else: which principal may take
// which action on which object. Services call `authorize` before acting;
// GraphQL and REST only require *a* principal and document the rules from
// RULES (the route table's `action`, the OpenAPI role table).
//
// A principal is a user reached through a password session (all of their
// role's rights) or through an API token (the role's rights narrowed to the
// token's scopes). The role is always the owner's current one.
import { Forbidden, NotFound } from '../errors.js';
import type { Viewer } from './deps.js';
import type { Role } from './validation.js';

export const SCOPES = ['jobs:read', 'jobs:write', 'batches:read', 'batches:write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** The widest scopes each role may put on an API token. */
export const ROLE_SCOPES: Record<Role, readonly Scope[]> = {
  admin: SCOPES,
  operator: ['jobs:read', 'jobs:write', 'batches:read', 'batches:write'],
  viewer: ['jobs:read', 'batches:read'],
};

export type Action =
  | 'job.read' | 'job.submit' | 'job.cancel' | 'job.purge' | 'job.forceComplete'
  | 'batch.read' | 'batch.create' | 'batch.cancel' | 'batch.delete' | 'batch.forceComplete'
  | 'user.manage' | 'limits.manage' | 'audit.read' | 'system.read' | 'storage.manage'
  | 'self.read' | 'self.update' | 'session.logout' | 'token.manage';

interface Rule {
  roles: readonly Role[];
  /** The scope an API token needs; null: any token may. */
  scope: Scope | null;
  /** Refused to API tokens: takes a password session. */
  sessionOnly?: true;
  /** On an object: operators only on their own, which is all they see (admins and viewers see all; viewers only read). */
  owned?: true;
  /** One line for the docs. */
  says: string;
}

const ALL: readonly Role[] = ['admin', 'operator', 'viewer'];
const WRITERS: readonly Role[] = ['admin', 'operator'];
const ADMIN: readonly Role[] = ['admin'];

export const RULES: Record<Action, Rule> = {
  'job.read': { roles: ALL, scope: 'jobs:read', owned: true, says: 'read jobs, their logs and stats (operators: own; admins and viewers: all)' },
  'job.submit': { roles: WRITERS, scope: 'jobs:write', says: 'submit jobs' },
  'job.cancel': { roles: WRITERS, scope: 'jobs:write', owned: true, says: 'cancel jobs (operators: own)' },
  'job.purge': { roles: WRITERS, scope: 'jobs:write', owned: true, says: 'purge finished jobs (operators: own)' },
  'job.forceComplete': { roles: ADMIN, scope: 'admin', says: 'force-complete jobs' },
  'batch.read': { roles: ALL, scope: 'batches:read', owned: true, says: 'read batches (operators: own; admins and viewers: all)' },
  'batch.create': { roles: WRITERS, scope: 'batches:write', says: 'create batches' },
  'batch.cancel': { roles: WRITERS, scope: 'batches:write', owned: true, says: 'cancel batches (operators: own)' },
  'batch.delete': { roles: WRITERS, scope: 'batches:write', owned: true, says: 'delete finished batches (operators: own)' },
  'batch.forceComplete': { roles: ADMIN, scope: 'admin', says: 'force-complete batches' },
  'user.manage': { roles: ADMIN, scope: 'admin', says: 'create, read and change users, revoke their sessions, see their API tokens' },
  'limits.manage': { roles: ADMIN, scope: 'admin', says: 'read and set concurrency limits' },
  'audit.read': { roles: ADMIN, scope: 'admin', says: 'read the audit trail' },
  'system.read': { roles: ADMIN, scope: 'admin', says: 'read the isolation report' },
  'storage.manage': { roles: ADMIN, scope: 'admin', says: 'see stored output per user and run retention now' },
  'self.read': { roles: ALL, scope: null, says: 'read their own account' },
  'self.update': { roles: ALL, scope: null, sessionOnly: true, says: 'change their own password' },
  'session.logout': { roles: ALL, scope: null, sessionOnly: true, says: 'log out (this session or all of them)' },
  'token.manage': { roles: ALL, scope: null, sessionOnly: true, says: 'create, list and revoke their own API tokens' },
};

/** Write scopes let a token read what it writes. */
const IMPLIED: Partial<Record<Scope, Scope>> = { 'jobs:read': 'jobs:write', 'batches:read': 'batches:write' };

function hasScope(p: Viewer, scope: Scope | null): boolean {
  if (p.scopes === null || scope === null) return true;
  const implied = IMPLIED[scope];
  return p.scopes.includes(scope) || (implied !== undefined && p.scopes.includes(implied));
}

/** Why `p` may not take `action` in general (whatever the object), or null when it may. */
function refusal(p: Viewer, action: Action): string | null {
  const rule = RULES[action];
  if (!rule.roles.includes(p.role)) return `${p.role}s may not ${rule.says}`;
  if (rule.sessionOnly && p.tokenId !== null) return `an API token may not ${rule.says}; log in with your password`;
  if (!hasScope(p, rule.scope)) return `this API token lacks the ${rule.scope} scope`;
  return null;
}

/** Whether `p` may take `action` at all (on some object, for actions on objects). */
export function may(p: Viewer, action: Action): boolean {
  return refusal(p, action) === null;
}

/** Whether `now` has exactly the rights `before` had (same role, same token scopes): open streams go on only then. */
export function sameRights(before: Viewer, now: Viewer): boolean {
  const [a, b] = [before.scopes, now.scopes];
  return before.role === now.role && (a === null || b === null ? a === b : a.length === b.length && a.every((s) => b.includes(s)));
}

/** Whether `p` sees every user's jobs and batches (admins and viewers), not only their own. */
export function seesAll(p: Viewer): boolean {
  return p.role === 'admin' || p.role === 'viewer';
}

/** Job `env` values are shown only to the job's owner and admins; others see the keys. */
export function seesEnv(p: Viewer, job: { ownerId: string }): boolean {
  return p.role === 'admin' || job.ownerId === p.id;
}

/** Whether `p` may read an object of `ownerId` (jobs, batches). */
export function mayRead(p: Viewer, action: 'job.read' | 'batch.read', owned: { ownerId: string }): boolean {
  return refusal(p, action) === null && (seesAll(p) || owned.ownerId === p.id);
}

/**
 * Throws unless `p` may take `action` (on `owned`, when the action concerns
 * one object). An object the principal may not even read answers NotFound,
 * exactly as if it did not exist; one it may read but not change, Forbidden.
 */
export function authorize(p: Viewer, action: Action, owned?: { ownerId: string }, what?: 'Job' | 'Batch'): void {
  if (owned && what) {
    const read = refusal(p, what === 'Job' ? 'job.read' : 'batch.read');
    if (read) throw new Forbidden(capitalize(read));
    if (!seesAll(p) && owned.ownerId !== p.id) throw new NotFound(what);
  }
  const why = refusal(p, action);
  if (why) throw new Forbidden(capitalize(why));
}

/**
 * The object `load` finds, once `p` may take `action` on it. A missing one is
 * NotFound, unless `p` may not read such objects at all: then the refusal
 * says so, and tells nothing of whether the object exists.
 */
export async function authorizedObject<T extends { ownerId: string }>(p: Viewer, action: Action, what: 'Job' | 'Batch', load: () => Promise<T | null>): Promise<T> {
  const found = await load();
  if (!found) {
    authorize(p, what === 'Job' ? 'job.read' : 'batch.read');
    throw new NotFound(what);
  }
  authorize(p, action, found, what);
  return found;
}

/** Scopes `p`'s role does not allow, of those asked for a token (an empty list: all fine). */
export function scopesBeyondRole(role: Role, asked: readonly string[]): string[] {
  return asked.filter((s) => !(ROLE_SCOPES[role] as readonly string[]).includes(s));
}

const capitalize = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** The role table as Markdown, for the OpenAPI description (the README carries the same table). */
export function roleTableMarkdown(): string {
  const rows = (Object.keys(RULES) as Action[]).map((a) => {
    const r = RULES[a];
    const cell = (role: Role) => (r.roles.includes(role) ? (r.owned && role === 'operator' ? 'own' : 'yes') : '—');
    const scope = r.sessionOnly ? 'password session only' : (r.scope ?? 'any');
    return `| ${r.says} | ${cell('admin')} | ${cell('operator')} | ${cell('viewer')} | ${scope} |`;
  });
  return ['| may … | admin | operator | viewer | API token scope |', '|---|---|---|---|---|', ...rows].join('\n');
}
