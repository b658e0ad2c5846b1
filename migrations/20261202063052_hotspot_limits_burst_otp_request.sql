-- Modify "hotspot_users" table
ALTER TABLE "hotspot_users" ADD COLUMN "otp_request_id" character varying NULL;
-- Modify "packages" table
ALTER TABLE "packages" ADD COLUMN "burst_up_kbps" bigint NOT NULL DEFAULT 0, ADD COLUMN "burst_down_kbps" bigint NOT NULL DEFAULT 0, ADD COLUMN "burst_threshold_up_kbps" bigint NOT NULL DEFAULT 0, ADD COLUMN "burst_threshold_down_kbps" bigint NOT NULL DEFAULT 0, ADD COLUMN "burst_time_seconds" bigint NOT NULL DEFAULT 0, ADD COLUMN "uptime_limit_seconds" bigint NULL, ADD COLUMN "data_limit_bytes" bigint NULL;
