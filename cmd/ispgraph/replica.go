package main

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ispgraph/ispgraph/internal/database"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// replicaOptions route lag-tolerant reads to DATABASE_REPLICA_URL (nil
// without one). Who wrote recently is kept in Redis, so a caller reads its
// own writes on every instance; it needs m.Redis open.
func (m *Main) replicaOptions() *database.ReplicaOptions {
	if m.Config.ReplicaURL == "" {
		return nil
	}
	return &database.ReplicaOptions{
		URL:    m.Config.ReplicaURL,
		Window: m.Config.ReplicaMaxLag,
		Writer: writerOf,
		Marks:  database.RedisMarks{Client: m.Redis, Prefix: m.Config.JobNamespace + ":wrote:"},
		Logger: m.Logger,
	}
}

// writerOf names the caller of ctx for read-your-writes: a staff user, an
// operator, a customer or an API key. Workers and commands ("system") are not
// tracked: nobody waits to read what a job wrote.
func writerOf(ctx context.Context) string {
	v := viewer.FromContext(ctx)
	if v == nil || v.Kind == viewer.System {
		return ""
	}
	return fmt.Sprintf("t%d:%s:u%d:n%d:k%d:%s", v.TenantID, v.Kind, v.UserID, v.NetworkUserID, v.APIKeyID, v.Label)
}

// replicaReads exposes how many reads the replica served.
func (m *Main) replicaReads() prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "ispgraph", Name: "database_replica_reads_total",
		Help: "Reads served by the streaming replica (DATABASE_REPLICA_URL); 0 without one.",
	}, func() float64 { return float64(m.DB.ReplicaReads()) })
}
