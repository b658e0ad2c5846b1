-- ispgraph:locking-index the outbox holds only recent rows (DONE rows are pruned after 7 days), so the build is short
-- Modify "outbox" table
ALTER TABLE "outbox" ADD COLUMN "done_at" timestamptz NULL;
-- Create index "outboxjob_status_enqueued_at" to table: "outbox"
CREATE INDEX "outboxjob_status_enqueued_at" ON "outbox" ("status", "enqueued_at");
