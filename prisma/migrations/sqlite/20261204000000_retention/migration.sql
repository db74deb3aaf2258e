-- AlterTable
ALTER TABLE "jobs" ADD COLUMN "logs_removed_at" DATETIME;

-- CreateIndex
CREATE INDEX "jobs_finished_at_logs_removed_at_idx" ON "jobs"("finished_at", "logs_removed_at");
