package resolvers

import (
	"context"
	"errors"

	"github.com/99designs/gqlgen/graphql"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/events"
	"github.com/ispgraph/ispgraph/internal/viewer"
	"github.com/ispgraph/ispgraph/loaders"
)

// stream subscribes to the viewer's tenant's events of kind and sends each
// entity load finds (nil: not this subscriber's, e.g. another router) with a
// context of its own, so per-request loaders are fresh for every event. The
// entity is read with the subscriber's own credentials: the tenant filter
// applies, whatever the message says.
func stream[T any](ctx context.Context, r *Resolver, kind events.Kind, load func(ctx context.Context, c *ent.Client, id int) (T, bool, error)) (<-chan graphql.Event[T], error) {
	v := viewer.FromContext(ctx)
	if !v.HasTenant() {
		return nil, apperr.E(apperr.Unauthenticated, "subscriptions need a credential of a tenant: send it in connection_init")
	}
	if r.Events == nil {
		return nil, apperr.E(apperr.Internal, "subscriptions are not configured in this process")
	}
	release, err := events.Acquire(ctx)
	if errors.Is(err, events.ErrTooManySubscriptions) {
		return nil, apperr.E(apperr.RateLimited, "%v: complete one before starting another", err)
	}
	if err != nil {
		return nil, err
	}
	in, err := r.Events.Subscribe(ctx, v.TenantID, kind)
	if err != nil {
		release()
		return nil, err
	}
	out := make(chan graphql.Event[T])
	go func() {
		defer close(out)
		defer release()
		for e := range in {
			ectx := loaders.NewContext(ctx, loaders.New(loaders.Deps{Client: r.Client, Billing: r.Billing}))
			x, ok, err := load(ectx, r.Client, e.ID)
			if ent.IsNotFound(err) || (err == nil && !ok) {
				continue
			}
			if err != nil {
				return // the database failed: end the stream, the client subscribes again
			}
			select {
			case out <- graphql.Event[T]{Context: ectx, Value: x}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
