package resolvers

import (
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/webhook"
)

// webhooks is the partner webhook service, or an INTERNAL error in a
// process built without it (the composition root always sets it).
func (r *Resolver) webhooks() (*webhook.Service, error) {
	if r.Webhooks == nil {
		return nil, apperr.E(apperr.Internal, "partner webhooks are not configured in this process")
	}
	return r.Webhooks, nil
}
