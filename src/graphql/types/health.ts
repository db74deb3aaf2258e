import type { IsolationReport } from '../../engine/isolation.js';
import type { HealthReport } from '../../services/health.js';
import type { QueueDepth, SystemStatus, WorkerLease } from '../../services/status.js';
import { builder } from '../builder.js';
import { requireViewer } from '../context.js';

const Health = builder.objectRef<HealthReport>('Health').implement({
  fields: (t) => ({
    status: t.exposeString('status'),
    database: t.exposeBoolean('database'),
    redis: t.exposeBoolean('redis', { nullable: true, description: 'null when no Redis is configured' }),
    version: t.exposeString('version'),
    isolation: t.exposeString('isolation', {
      nullable: true,
      description: 'How isolated jobs run by this process are: full, reduced, off (JOB_ISOLATION=off) or none (impossible on this host: jobs are refused); null when it runs no jobs (serve --no-worker). Admins see the details in `isolation`.',
    }),
  }),
});

const IsolationStatus = builder.objectRef<IsolationReport>('IsolationStatus').implement({
  description: 'The isolation jobs of this process get, as its spawner helper found the host when it started.',
  fields: (t) => ({
    level: t.exposeString('level', { description: 'full: own uid per user, namespaces and cgroup; reduced: unprivileged user namespace; off: JOB_ISOLATION=off; none: impossible on this host, jobs are refused' }),
    identity: t.exposeString('identity', { description: 'As whom jobs run' }),
    features: t.exposeStringList('features', { description: 'Kernel features in use' }),
    missing: t.exposeStringList('missing', { description: 'What this host lacks and what is done instead; empty when nothing is' }),
    network: t.exposeString('network', { description: 'How jobs reach the network' }),
  }),
});

builder.queryField('health', (t) => t.field({ type: Health, resolve: (_root, _args, ctx) => ctx.services.health.check() }));

builder.queryField('isolation', (t) =>
  t.field({
    type: IsolationStatus,
    nullable: true,
    authScopes: { authenticated: true },
    description: 'Admins only: how jobs run by this process are isolated; null when it runs none (serve --no-worker).',
    resolve: (_root, _args, ctx) => ctx.services.health.isolation(requireViewer(ctx)),
  }),
);

const QueueDepthType = builder.objectRef<QueueDepth>('QueueDepth').implement({
  fields: (t) => ({
    pending: t.exposeInt('pending'),
    running: t.exposeInt('running'),
    oldestPendingAt: t.expose('oldestPendingAt', { type: 'DateTime', nullable: true, description: 'When the longest-waiting pending job was submitted; null when none waits' }),
  }),
});

const WorkerLeaseType = builder.objectRef<WorkerLease>('WorkerLease').implement({
  description: 'A registered worker and its lease, renewed every HEARTBEAT_SECONDS on the database\'s clock.',
  fields: (t) => ({
    id: t.exposeID('id'),
    hostname: t.exposeString('hostname'),
    pid: t.exposeInt('pid'),
    startedAt: t.expose('startedAt', { type: 'DateTime' }),
    heartbeatAt: t.expose('heartbeatAt', { type: 'DateTime', description: 'Its last lease renewal' }),
    leaseExpiresAt: t.expose('leaseExpiresAt', { type: 'DateTime' }),
    expired: t.exposeBoolean('expired', { description: 'Past its lease and not reaped yet: another worker settles its jobs soon' }),
    running: t.exposeInt('running', { description: 'Jobs the database has running on it' }),
  }),
});

const SystemStatusType = builder.objectRef<SystemStatus>('SystemStatus').implement({
  description: 'The queue, the workers and their leases, and this process\'s isolation. Stored output per user: `storage`.',
  fields: (t) => ({
    version: t.exposeString('version'),
    database: t.exposeString('database', { description: 'sqlite or postgresql' }),
    queue: t.field({ type: QueueDepthType, resolve: (s) => s.queue }),
    workers: t.field({ type: [WorkerLeaseType], resolve: (s) => s.workers }),
    isolation: t.field({ type: IsolationStatus, nullable: true, description: 'As `isolation`: null when this process runs no jobs', resolve: (s) => s.isolation }),
  }),
});

builder.queryField('adminStatus', (t) =>
  t.field({
    type: SystemStatusType,
    authScopes: { authenticated: true },
    description: 'Admins only: the queue, the workers and their leases, and how this process isolates jobs.',
    resolve: (_root, _args, ctx) => ctx.services.status.status(requireViewer(ctx)),
  }),
);
