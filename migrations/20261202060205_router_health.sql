-- Modify "routers" table
ALTER TABLE "routers" ADD COLUMN "last_seen_at" timestamptz NULL, ADD COLUMN "cpu_load" bigint NULL, ADD COLUMN "free_memory" bigint NULL, ADD COLUMN "total_memory" bigint NULL, ADD COLUMN "uptime_seconds" bigint NULL, ADD COLUMN "routeros_version" character varying NULL, ADD COLUMN "identity" character varying NULL, ADD COLUMN "board_name" character varying NULL;
