// The retention and quota settings: off by default, validated at start-up
// with a message naming the variable.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('retention settings', () => {
  it('default: nothing is deleted, no quota, hourly runs in pages of 500 rows', () => {
    expect(loadConfig({}).retention).toEqual({ jobDays: null, logDays: null, intervalMs: 3_600_000, batchRows: 500, logQuotaBytes: null, logQuotaMode: 'reject' });
  });

  it('takes days, minutes, rows, bytes and the mode; 0 and off mean none', () => {
    const c = loadConfig({ RETENTION_JOBS_DAYS: '90', RETENTION_LOGS_DAYS: '14', RETENTION_INTERVAL_MINUTES: '15', RETENTION_BATCH_ROWS: '200', LOG_QUOTA_BYTES: '1073741824', LOG_QUOTA_MODE: 'evict' });
    expect(c.retention).toEqual({ jobDays: 90, logDays: 14, intervalMs: 900_000, batchRows: 200, logQuotaBytes: 1073741824, logQuotaMode: 'evict' });
    expect(loadConfig({ RETENTION_JOBS_DAYS: 'off', RETENTION_LOGS_DAYS: '0', LOG_QUOTA_BYTES: '0' }).retention).toMatchObject({ jobDays: null, logDays: null, logQuotaBytes: null });
  });

  it.each([
    [{ RETENTION_JOBS_DAYS: 'ten' }, 'RETENTION_JOBS_DAYS'],
    [{ RETENTION_LOGS_DAYS: '-1' }, 'RETENTION_LOGS_DAYS'],
    [{ RETENTION_JOBS_DAYS: '7', RETENTION_LOGS_DAYS: '7' }, 'RETENTION_LOGS_DAYS (7) must be less than RETENTION_JOBS_DAYS (7)'],
    [{ RETENTION_INTERVAL_MINUTES: '0' }, 'RETENTION_INTERVAL_MINUTES'],
    [{ RETENTION_BATCH_ROWS: '5' }, 'RETENTION_BATCH_ROWS'],
    [{ LOG_QUOTA_BYTES: '100' }, 'LOG_QUOTA_BYTES must be an integer from 1024'],
    [{ LOG_QUOTA_MODE: 'drop' }, 'LOG_QUOTA_MODE must be reject or evict'],
  ])('%j is refused naming it', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});
