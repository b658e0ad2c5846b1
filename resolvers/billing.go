package resolvers

import (
	"context"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/graph/model"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/billing"
)

func generatePayload(res billing.GenerateResult) *model.GenerateInvoicesPayload {
	return &model.GenerateInvoicesPayload{
		Period:      res.Period.String(),
		PeriodStart: res.Period.Start.UTC(),
		PeriodEnd:   res.Period.End.UTC(),
		Created:     res.Created,
		Existing:    res.Existing,
		Skipped:     res.Skipped,
	}
}

// refundPayment reverses a payment in billing and, when it came through a
// gateway, sends the refund to the provider within the mutation's
// transaction: a provider that refuses rolls the refund back.
func (r *Resolver) refundPayment(ctx context.Context, id int, reason string) (*ent.Payment, error) {
	p, err := r.Billing.RefundPayment(ctx, id, reason)
	if err != nil || p.PaymentGatewayID == nil {
		return p, err
	}
	gw, err := r.client(ctx).PaymentGateway.Get(ctx, *p.PaymentGatewayID)
	if err != nil {
		return nil, err
	}
	if r.Gateways == nil {
		return nil, apperr.E(apperr.Internal, "gateway refunds are not configured in this process")
	}
	refundID, err := r.Gateways.Refund(ctx, gw, p)
	if err != nil || refundID == "" {
		return p, err
	}
	payload := map[string]any{}
	for k, v := range p.GatewayPayload {
		payload[k] = v
	}
	payload["refund_id"] = refundID
	return r.client(ctx).Payment.UpdateOne(p).SetGatewayPayload(payload).Save(ctx)
}
