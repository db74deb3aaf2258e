// Imports each domain's types, then builds. No server, no ports: codegen and
// scripts import this to print schema.graphql.
import { builder } from './builder.js';
import './types/scalars.js';
import './types/auth.js';
import './types/user.js';
import './types/limits.js';
import './types/health.js';
import './types/job.js';
import './types/subscriptions.js';
import './types/batch.js';
import './types/audit.js';
import './types/storage.js';

export const schema = builder.toSchema({ sortSchema: false });
