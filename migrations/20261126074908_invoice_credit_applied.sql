-- Modify "invoices" table
ALTER TABLE "invoices" ADD COLUMN "credit_applied" bigint NOT NULL DEFAULT 0;
