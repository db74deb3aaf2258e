import type { DatabaseSize, RetentionReport, StorageReport, UserStorage } from '../../services/retention.js';
import { builder } from '../builder.js';
import { requireViewer } from '../context.js';

// Byte counts are Float: a database passes GraphQL's 32-bit Int at 2 GiB.

const DatabaseSizeType = builder.objectRef<DatabaseSize>('DatabaseSize').implement({
  fields: (t) => ({
    provider: t.exposeString('provider', { description: 'sqlite or postgresql' }),
    bytes: t.exposeFloat('bytes', { description: 'SQLite: the file plus its -wal; PostgreSQL: pg_database_size' }),
    walBytes: t.exposeFloat('walBytes', { nullable: true, description: 'SQLite: the -wal file alone' }),
    freeBytes: t.exposeFloat('freeBytes', { nullable: true, description: 'SQLite: free pages inside the file (reused, or returned by incremental vacuum)' }),
    autoVacuum: t.exposeString('autoVacuum', { nullable: true, description: 'SQLite: none, full or incremental; null on PostgreSQL (autovacuum)' }),
  }),
});

const UserStorageType = builder.objectRef<UserStorage>('UserStorage').implement({
  fields: (t) => ({
    userId: t.exposeID('userId'),
    email: t.exposeString('email', { nullable: true }),
    jobs: t.exposeInt('jobs'),
    storedLogBytes: t.exposeFloat('storedLogBytes', { description: 'Output their jobs keep stored (what LOG_QUOTA_BYTES is held against)' }),
    jobsWithLogsRemoved: t.exposeInt('jobsWithLogsRemoved'),
  }),
});

const StorageTotalsType = builder.objectRef<StorageReport['totals']>('StorageTotals').implement({
  fields: (t) => ({
    jobs: t.exposeInt('jobs'),
    storedLogBytes: t.exposeFloat('storedLogBytes'),
    jobsWithLogsRemoved: t.exposeInt('jobsWithLogsRemoved'),
  }),
});

const RetentionPolicyType = builder.objectRef<StorageReport['policy']>('RetentionPolicy').implement({
  fields: (t) => ({
    jobDays: t.exposeInt('jobDays', { nullable: true, description: 'RETENTION_JOBS_DAYS; null: jobs are kept' }),
    logDays: t.exposeInt('logDays', { nullable: true, description: 'RETENTION_LOGS_DAYS; null: output is kept' }),
    intervalMinutes: t.exposeInt('intervalMinutes'),
    batchRows: t.exposeInt('batchRows'),
    logQuotaBytes: t.exposeFloat('logQuotaBytes', { nullable: true, description: 'LOG_QUOTA_BYTES; null: no quota' }),
    logQuotaMode: t.exposeString('logQuotaMode', { description: 'reject (403 at submit) or evict (oldest output removed)' }),
  }),
});

const StorageReportType = builder.objectRef<StorageReport>('StorageReport').implement({
  description: 'Stored output and jobs per user, the database size and the retention policy in force.',
  fields: (t) => ({
    database: t.field({ type: DatabaseSizeType, resolve: (s) => s.database }),
    totals: t.field({ type: StorageTotalsType, resolve: (s) => s.totals }),
    users: t.field({ type: [UserStorageType], description: 'Users with jobs, most stored output first', resolve: (s) => s.users }),
    policy: t.field({ type: RetentionPolicyType, resolve: (s) => s.policy }),
  }),
});

const RetentionRunType = builder.objectRef<RetentionReport>('RetentionRun').implement({
  description: 'What one retention run removed.',
  fields: (t) => ({
    startedAt: t.expose('startedAt', { type: 'DateTime' }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime' }),
    jobsDeleted: t.exposeInt('jobsDeleted'),
    batchesDeleted: t.exposeInt('batchesDeleted'),
    logsRemoved: t.exposeInt('logsRemoved', { description: 'Jobs whose output was removed, deleted ones included' }),
    chunksDeleted: t.exposeInt('chunksDeleted'),
    runDirsRemoved: t.exposeInt('runDirsRemoved'),
    databaseBytesBefore: t.exposeFloat('databaseBytesBefore'),
    databaseBytesAfter: t.exposeFloat('databaseBytesAfter'),
  }),
});

builder.queryField('storage', (t) =>
  t.field({
    type: StorageReportType,
    authScopes: { authenticated: true },
    description: 'Admins: stored output and jobs per user (the `first` users with the most output, default 100), the database size and the retention policy.',
    args: { first: t.arg.int() },
    resolve: (_root, { first }, ctx) => ctx.services.retention.storage(requireViewer(ctx), { first }),
  }),
);

builder.mutationField('runRetention', (t) =>
  t.field({
    type: RetentionRunType,
    authScopes: { authenticated: true },
    description: 'Admins: runs the retention policy now (after a run in progress) and answers what it removed.',
    resolve: (_root, _args, ctx) => ctx.services.retention.run(requireViewer(ctx)),
  }),
);
