// Package audit owns the audit trail: one AuditLog row for every mutation,
// login, failed login and platform-operator access, with the actor, tenant,
// action, entity, the names of the changed fields, request id and address.
// Values are never recorded, so a secret sent in a mutation cannot reach it.
package audit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/internal/observability"
	"github.com/ispgraph/ispgraph/internal/reqinfo"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// Entry is one event to record.
type Entry struct {
	TenantID   int
	ActorKind  string // staff, customer, partner, operator, system, anonymous
	ActorID    *int
	ActorLabel string // e-mail, username or API key prefix: who, for a person reading the log
	Action     string // e.g. "login", "login.failed", "mutation.createPackage", "operator.access"
	EntityType string
	EntityID   *int
	Fields     []string // names of the fields the mutation set, never their values
	Outcome    string   // "ok" or the error code
}

// Recorder writes audit entries. It writes outside the caller's transaction,
// so a refused or failed mutation is recorded too.
type Recorder struct {
	Client *ent.Client
	Logger *slog.Logger
	Now    func() time.Time
}

// pending collects the entries of one GraphQL operation, written when the
// operation (and its transaction) is over.
type pending struct {
	mu      sync.Mutex
	entries []Entry
}

type pendingKey struct{}

// Deferred returns a context in which Record only collects entries, and the
// function that writes them. The GraphQL server wraps each operation with it
// and writes after the mutation's transaction has committed or rolled back:
// the audit row must outlive a rollback, and on SQLite a second writer would
// wait on the transaction's lock.
func (r *Recorder) Deferred(ctx context.Context) (context.Context, func(context.Context)) {
	p := &pending{}
	return context.WithValue(ctx, pendingKey{}, p), func(ctx context.Context) {
		p.mu.Lock()
		entries := p.entries
		p.entries = nil
		p.mu.Unlock()
		for _, e := range entries {
			r.write(ctx, e)
		}
	}
}

// Record writes e, or collects it when ctx is inside Deferred. A failure to
// write is logged, never returned: the audit trail must not turn a successful
// request into a failed one.
func (r *Recorder) Record(ctx context.Context, e Entry) {
	if r == nil || r.Client == nil || e.TenantID <= 0 {
		return
	}
	if p, ok := ctx.Value(pendingKey{}).(*pending); ok {
		p.mu.Lock()
		p.entries = append(p.entries, e)
		p.mu.Unlock()
		return
	}
	r.write(ctx, e)
}

func (r *Recorder) write(ctx context.Context, e Entry) {
	info := reqinfo.From(ctx)
	changes := map[string]any{}
	if len(e.Fields) > 0 {
		changes["fields"] = e.Fields
	}
	if e.Outcome != "" {
		changes["outcome"] = e.Outcome
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	// The audit row belongs to the tenant acted in, whoever the actor is
	// (a customer may not write audit rows itself).
	wctx := viewer.ForTenant(context.WithoutCancel(ctx), e.TenantID)
	err := r.Client.AuditLog.Create().
		SetTenantID(e.TenantID).
		SetActorKind(e.ActorKind).
		SetNillableActorID(e.ActorID).
		SetActorLabel(trim(e.ActorLabel, 255)).
		SetAction(trim(e.Action, 255)).
		SetEntityType(e.EntityType).
		SetNillableEntityID(e.EntityID).
		SetChanges(changes).
		SetRequestID(observability.RequestIDFrom(ctx)).
		SetAddress(trim(info.Address, 255)).
		SetCreatedAt(now().UTC()).
		Exec(wctx)
	if err != nil && r.Logger != nil {
		r.Logger.ErrorContext(ctx, "audit: write failed", slog.String("action", e.Action), slog.Any("error", err))
	}
}

// Actor fills the actor fields of e from the viewer in ctx.
func Actor(ctx context.Context, e Entry) Entry {
	v := viewer.FromContext(ctx)
	if v == nil {
		e.ActorKind = "anonymous"
		return e
	}
	if e.TenantID == 0 {
		e.TenantID = v.TenantID
	}
	e.ActorKind = v.Kind.String()
	switch {
	case v.UserID > 0:
		id := v.UserID
		e.ActorID = &id
	case v.NetworkUserID > 0:
		id := v.NetworkUserID
		e.ActorID = &id
	case v.APIKeyID > 0:
		id := v.APIKeyID
		e.ActorID = &id
	}
	if e.ActorLabel == "" {
		e.ActorLabel = v.Label
	}
	return e
}

func trim(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Decision records a business decision (a refund, a suspension, a
// cancellation) in the caller's transaction, with details a person needs to
// understand it (statuses, amounts, the reason given; never secrets): the
// row commits or rolls back with the change it explains. The actor comes
// from the viewer in ctx, as for Record.
func Decision(ctx context.Context, c *ent.Client, action, entityType string, entityID int, details map[string]any) error {
	e := Actor(ctx, Entry{Action: action, EntityType: entityType, EntityID: &entityID})
	err := c.AuditLog.Create().
		SetActorKind(e.ActorKind).
		SetNillableActorID(e.ActorID).
		SetActorLabel(trim(e.ActorLabel, 255)).
		SetAction(trim(action, 255)).
		SetEntityType(entityType).
		SetEntityID(entityID).
		SetChanges(details).
		SetRequestID(observability.RequestIDFrom(ctx)).
		SetAddress(trim(reqinfo.From(ctx).Address, 255)).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}
