-- ispgraph:locking-index users holds only staff accounts (a few per tenant), so the build is short
-- Modify "tenants" table
ALTER TABLE "tenants" ADD COLUMN "taxes" jsonb NULL;
-- Modify "users" table
ALTER TABLE "users" ADD COLUMN "setup_token_hash" bytea NULL, ADD COLUMN "setup_expires_at" timestamptz NULL;
-- Create index "user_setup_token_hash" to table: "users"
CREATE UNIQUE INDEX "user_setup_token_hash" ON "users" ("setup_token_hash");
