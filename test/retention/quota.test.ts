// The per-user stored-log quota, answered at submission: at or over
// LOG_QUOTA_BYTES a submission (job or batch) is refused with 403 naming the
// quota and the usage (the default, LOG_QUOTA_MODE=reject); with
// LOG_QUOTA_MODE=evict the user's oldest finished jobs lose their output
// instead (their logs then answer 410) and the submission goes through.
// Other users are not affected by one user's usage.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS } from '../helpers/db.js';
import { runJob } from '../helpers/jobs.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';

const QUOTA = 4096;
/** A job that keeps 3000 bytes of stdout: two of them put their owner over the quota. */
const BIG = { name: 'big', command: ['sh', '-c', 'head -c 3000 /dev/zero | tr "\\0" x'] };

describe.each(PROVIDERS)('stored-log quota on %s', (provider) => {
  describe('reject (default)', () => {
    let s: TestServer;
    beforeAll(async () => {
      s = await startServer(provider, { LOG_QUOTA_BYTES: String(QUOTA), RETENTION_INTERVAL_MINUTES: '10080' });
    });
    afterAll(async () => {
      await s?.stop();
    });

    it('refuses jobs and batches with 403 naming the quota and the usage; others still submit; purging makes room', async () => {
      const user = await s.user('operator');
      const bystander = await s.user('operator');
      const first = (await runJob(s, user.token, BIG)).job;
      // Under the quota (3000 < 4096): still accepted.
      const second = (await runJob(s, user.token, BIG)).job;

      // Usage is read at most once a second: the refusal comes within it.
      const refused = await waitFor(async () => {
        const res = await s.request('POST', '/jobs', { token: user.token, body: { name: 'more', command: ['true'] } });
        return res.status === 403 ? res : null;
      }, 10_000);
      expect(refused.body.detail).toContain('LOG_QUOTA_BYTES');
      expect(refused.body.detail).toContain(`${QUOTA} bytes`);
      expect(refused.body.detail).toContain('6000 bytes');

      const batch = await s.request('POST', '/job-batches', { token: user.token, body: { name: 'b', jobs: [{ name: 'x', command: ['true'] }] } });
      expect(batch.status).toBe(403);
      expect(batch.body.detail).toContain('6000 bytes');
      const gql = await s.graphql('mutation($i: SubmitJobInput!) { submitJob(input: $i) { id } }', { i: { name: 'g', command: ['true'] } }, user.token);
      expect(gql.errors?.[0]).toMatchObject({ extensions: { code: 'FORBIDDEN' } });

      expect((await s.request('POST', '/jobs', { token: bystander.token, body: { name: 'other', command: ['true'] } })).status).toBe(202);
      // Nothing of the user's output was touched.
      for (const j of [first, second]) expect((await s.request('GET', `/jobs/${j.id}/logs`, { token: user.token })).body.stdout).toHaveLength(3000);

      expect((await s.request('DELETE', `/jobs/${first.id}/purge`, { token: user.token })).status).toBe(204);
      await waitFor(async () => (await s.request('POST', '/jobs', { token: user.token, body: { name: 'again', command: ['true'] } })).status === 202, 10_000);
    });
  });

  describe('evict', () => {
    let s: TestServer;
    beforeAll(async () => {
      s = await startServer(provider, { LOG_QUOTA_BYTES: String(QUOTA), LOG_QUOTA_MODE: 'evict', RETENTION_INTERVAL_MINUTES: '10080' });
    });
    afterAll(async () => {
      await s?.stop();
    });

    it('removes the output of the oldest finished jobs to make room: the submission is accepted, the evicted logs answer 410', async () => {
      const user = await s.user('operator');
      const oldest = (await runJob(s, user.token, BIG)).job;
      const newer = (await runJob(s, user.token, BIG)).job;

      // Once the usage (6000 bytes) is seen, the submission evicts the oldest job's output and goes through.
      await waitFor(async () => {
        expect((await s.request('POST', '/jobs', { token: user.token, body: { name: 'more', command: ['true'] } })).status).toBe(202);
        return (await s.request('GET', `/jobs/${oldest.id}/logs`, { token: user.token })).status === 410;
      }, 10_000);

      const gone = await s.request('GET', `/jobs/${oldest.id}/logs`, { token: user.token });
      expect(gone.body.detail).toMatch(/removed at \d{4}-\d\d-\d\dT/);
      expect((await s.request('GET', `/jobs/${oldest.id}`, { token: user.token })).status).toBe(200);
      expect(await s.app.db.prisma.jobLogChunk.count({ where: { jobId: oldest.id } })).toBe(0);
      // Only as much as was needed: the newer job keeps its output.
      expect((await s.request('GET', `/jobs/${newer.id}/logs`, { token: user.token })).body.stdout).toHaveLength(3000);
      const storage = await s.request('GET', '/admin/storage', { token: s.adminToken });
      expect(storage.body.users.find((u: { user_id: string }) => u.user_id === user.id)).toMatchObject({ stored_log_bytes: 3000, jobs_with_logs_removed: 1 });
    });
  });
});
