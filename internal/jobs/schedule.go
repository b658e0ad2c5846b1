package jobs

// Scheduled jobs: enqueued periodically by the worker pools (cron), not by
// mutations. They take no arguments and fan out over every active tenant.
const (
	MarkOverdueInvoices = "MarkOverdueInvoices"
	GenerateInvoices    = "GenerateInvoices"
	SyncRouterSessions  = "SyncRouterSessions"
	ExpireHotspotUsers  = "ExpireHotspotUsers"
	SendReminders       = "SendReminders"
	ReconcileRouters    = "ReconcileRouters"
	ExpireNetworkUsers  = "ExpireNetworkUsers"
	CheckRouters        = "CheckRouters"
	// PruneWebhookDeliveries removes settled partner webhook deliveries
	// older than webhook.Retention.
	PruneWebhookDeliveries = "PruneWebhookDeliveries"
)
