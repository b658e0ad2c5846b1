-- Drop index "notification_tenant_id_invoice_id_kind_recipient" from table: "notifications"
DROP INDEX "notification_tenant_id_invoice_id_kind_recipient";
-- Create index "notification_tenant_id_invoice_id_kind_recipient" to table: "notifications"
CREATE UNIQUE INDEX "notification_tenant_id_invoice_id_kind_recipient" ON "notifications" ("tenant_id", "invoice_id", "kind", "recipient");
