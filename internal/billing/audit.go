package billing

import (
	"context"
	"fmt"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/internal/observability"
	"github.com/ispgraph/ispgraph/internal/reqinfo"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// audit records a staff decision and its reason in the audit log, in the
// transaction of the change.
func audit(ctx context.Context, c *ent.Client, action, entityType string, id int, changes map[string]any) error {
	v := viewer.FromContext(ctx)
	a := c.AuditLog.Create().
		SetActorKind(v.Kind.String()).SetAction(action).
		SetEntityType(entityType).SetEntityID(id).SetChanges(changes).
		SetRequestID(observability.RequestIDFrom(ctx)).SetAddress(reqinfo.From(ctx).Address)
	if v.UserID > 0 {
		a.SetActorID(v.UserID)
	}
	if err := a.Exec(ctx); err != nil {
		return fmt.Errorf("billing: audit %s: %w", action, err)
	}
	return nil
}
