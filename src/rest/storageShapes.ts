// GraphQL data of the storage routes → REST's snake_case bodies.
import type { RunRetentionMutation, StorageQuery } from './operations/generated.js';

export function storageRead(s: StorageQuery['storage']) {
  return {
    database: { provider: s.database.provider, bytes: s.database.bytes, wal_bytes: s.database.walBytes, free_bytes: s.database.freeBytes, auto_vacuum: s.database.autoVacuum },
    totals: { jobs: s.totals.jobs, stored_log_bytes: s.totals.storedLogBytes, jobs_with_logs_removed: s.totals.jobsWithLogsRemoved },
    users: s.users.map((u) => ({ user_id: u.userId, email: u.email, jobs: u.jobs, stored_log_bytes: u.storedLogBytes, jobs_with_logs_removed: u.jobsWithLogsRemoved })),
    policy: {
      job_days: s.policy.jobDays, log_days: s.policy.logDays, interval_minutes: s.policy.intervalMinutes, batch_rows: s.policy.batchRows,
      log_quota_bytes: s.policy.logQuotaBytes, log_quota_mode: s.policy.logQuotaMode,
    },
  };
}

export function retentionRunRead(r: RunRetentionMutation['runRetention']) {
  return {
    started_at: r.startedAt, finished_at: r.finishedAt, jobs_deleted: r.jobsDeleted, batches_deleted: r.batchesDeleted, logs_removed: r.logsRemoved,
    chunks_deleted: r.chunksDeleted, run_dirs_removed: r.runDirsRemoved, database_bytes_before: r.databaseBytesBefore, database_bytes_after: r.databaseBytesAfter,
  };
}
