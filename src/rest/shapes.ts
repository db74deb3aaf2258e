// GraphQL results (camelCase) to REST bodies (snake_case), one function per
// type so user data inside env/payload is never renamed.
import type { z } from 'zod';
import type * as Ops from './operations/generated.js';
import type { LimitsRead, UserRead } from './schemas.js';

export const userRead = (u: Ops.UserFieldsFragment): z.infer<typeof UserRead> => ({
  id: u.id,
  email: u.email,
  role: u.role.toLowerCase() as z.infer<typeof UserRead>['role'],
  is_active: u.isActive,
  max_concurrent_jobs: u.maxConcurrentJobs,
  created_at: u.createdAt,
});

export const limitsRead = (l: Ops.LimitsFieldsFragment): z.infer<typeof LimitsRead> => ({
  default_max_concurrent_jobs: l.defaultMaxConcurrentJobs,
  overrides: l.overrides.map((o) => ({ user_id: o.userId, email: o.email, max_concurrent_jobs: o.maxConcurrentJobs })),
});

const ROLE = { admin: 'ADMIN', operator: 'OPERATOR', viewer: 'VIEWER' } as const;
export const roleEnum = (r: keyof typeof ROLE) => ROLE[r];
