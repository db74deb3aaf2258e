// Where a running job's output goes: appended to storage in batches with a
// per-job sequence number, then published (after the write, so a
// subscriber that replays storage and then follows live sees no gap).
import type { Database } from '../db/client.js';
import type { EventBus } from '../events/bus.js';
import { storableText } from '../services/jobSpec.js';
import type { OutputSink } from './runner.js';

export function createLogSink(db: Database, bus: EventBus, jobId: string): OutputSink {
  let seq = 0;
  return {
    async write(chunks) {
      const at = new Date();
      const rows = chunks.map((c) => ({ jobId, seq: ++seq, stream: c.stream, data: storableText(c.data), at }));
      await db.prisma.jobLogChunk.createMany({ data: rows });
      const iso = at.toISOString();
      for (const r of rows) bus.publish('job.log', { jobId, seq: r.seq, stream: r.stream, data: r.data, at: iso }, jobId);
    },
  };
}
