-- AlterTable
ALTER TABLE "jobs" ADD COLUMN "limits" TEXT NOT NULL DEFAULT '{}';
