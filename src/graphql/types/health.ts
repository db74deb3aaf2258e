import type { HealthReport } from '../../services/health.js';
import { builder } from '../builder.js';

const Health = builder.objectRef<HealthReport>('Health').implement({
  fields: (t) => ({
    status: t.exposeString('status'),
    database: t.exposeBoolean('database'),
    redis: t.exposeBoolean('redis', { nullable: true, description: 'null when no Redis is configured' }),
    version: t.exposeString('version'),
  }),
});

builder.queryField('health', (t) => t.field({ type: Health, resolve: (_root, _args, ctx) => ctx.services.health.check() }));
