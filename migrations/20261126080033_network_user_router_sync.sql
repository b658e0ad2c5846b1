-- Modify "network_users" table
ALTER TABLE "network_users" ADD COLUMN "router_synced_at" timestamptz NULL, ADD COLUMN "router_sync_error" character varying NULL;
