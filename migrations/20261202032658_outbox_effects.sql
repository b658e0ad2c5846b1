-- Modify "outbox" table
ALTER TABLE "outbox" ADD COLUMN "done_at" timestamptz NULL;
-- Create index "outboxjob_status_enqueued_at" to table: "outbox"
CREATE INDEX "outboxjob_status_enqueued_at" ON "outbox" ("status", "enqueued_at");
