-- AlterTable
ALTER TABLE "jobs" ADD COLUMN     "logs_removed_at" TIMESTAMP(3);

-- CreateIndex
CREATE INDEX "jobs_finished_at_logs_removed_at_idx" ON "jobs"("finished_at", "logs_removed_at");
