// Package webhook owns partner webhooks out: the endpoints a tenant registers
// (URL policy, a signing secret generated here, shown once and sealed at
// rest), the events its business changes cause (an ent hook writes one
// delivery per subscribed endpoint, and its outbox job, in the transaction
// of the change), and the signed, retried delivery of each (the
// DeliverWebhook job). docs/payments.md tells partners how to verify them.
package webhook

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/webhookattempt"
	"github.com/ispgraph/ispgraph/ent/webhookdelivery"
	"github.com/ispgraph/ispgraph/ent/webhookendpoint"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/audit"
	"github.com/ispgraph/ispgraph/internal/gid"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/outbox"
	"github.com/ispgraph/ispgraph/internal/secret"
	"github.com/ispgraph/ispgraph/internal/transaction"
)

// The event types, as partners subscribe to them and see them in payloads.
const (
	PaymentCompleted    = "payment.completed"
	PaymentRefunded     = "payment.refunded"
	InvoiceCreated      = "invoice.created"
	InvoiceOverdue      = "invoice.overdue"
	SubscriberSuspended = "subscriber.suspended"
	SubscriberActivated = "subscriber.activated"
)

// EventTypes lists every event type.
var EventTypes = []string{PaymentCompleted, PaymentRefunded, InvoiceCreated, InvoiceOverdue, SubscriberSuspended, SubscriberActivated}

// RotationOverlap is how long after rotateWebhookSecret deliveries are still
// signed with the previous secret too, so a partner can switch without
// losing a delivery.
const RotationOverlap = 24 * time.Hour

// MaxBackoff bounds the wait between two automatic attempts.
const MaxBackoff = 12 * time.Hour

// Service registers endpoints, records events and delivers them. Every
// field is required except Logger and Now.
type Service struct {
	Client  *ent.Client
	Secrets *secret.Box
	IDs     *gid.Codec // the API's opaque ids, used in payloads
	Policy  Policy
	// HTTP posts deliveries (Policy.HTTPClient).
	HTTP *http.Client
	// Attempts is how many automatic attempts a delivery gets; RetryBase
	// the wait after the first failure, tripled after each later one.
	Attempts  int
	RetryBase time.Duration
	Logger    *slog.Logger
	Now       func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Backoff is the wait after the n-th failed attempt (n ≥ 1): RetryBase·3ⁿ⁻¹,
// at most MaxBackoff. With the defaults (1 minute, 8 attempts) the last
// attempt comes about 18 hours after the first.
func (s *Service) Backoff(n int) time.Duration {
	d := s.RetryBase
	for i := 1; i < n && d < MaxBackoff; i++ {
		d *= 3
	}
	return min(d, MaxBackoff)
}

// EndpointInput is what staff give for an endpoint; nil leaves a field as it
// is on update.
type EndpointInput struct {
	URL         *string
	Description *string
	Events      []string
	Enabled     *bool
}

// normalizeEvents checks event types and returns them sorted, without
// duplicates.
func normalizeEvents(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, apperr.E(apperr.BadUserInput, "subscribe the endpoint to at least one event: %s", strings.Join(EventTypes, ", "))
	}
	out := make([]string, 0, len(in))
	for _, e := range in {
		e = strings.TrimSpace(e)
		if !slices.Contains(EventTypes, e) {
			return nil, apperr.E(apperr.BadUserInput, "unknown event type %q: the event types are %s", e, strings.Join(EventTypes, ", "))
		}
		out = append(out, e)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// newSecret makes a signing secret: "whsec_" and 32 random bytes.
func newSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("webhook: secret: %w", err)
	}
	return "whsec_" + base64.RawURLEncoding.EncodeToString(b), nil
}

// newEventID makes an event's idempotency id.
func newEventID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("webhook: event id: %w", err)
	}
	return "evt_" + hex.EncodeToString(b), nil
}

// CreateEndpoint registers an endpoint of the caller's tenant and returns
// it with its signing secret, which is not shown again.
func (s *Service) CreateEndpoint(ctx context.Context, in EndpointInput) (*ent.WebhookEndpoint, string, error) {
	if in.URL == nil {
		return nil, "", apperr.E(apperr.BadUserInput, "url is required")
	}
	u, err := s.Policy.CheckURL(ctx, *in.URL)
	if err != nil {
		return nil, "", err
	}
	events, err := normalizeEvents(in.Events)
	if err != nil {
		return nil, "", err
	}
	plain, err := newSecret()
	if err != nil {
		return nil, "", err
	}
	sealed, err := s.Secrets.Seal(plain)
	if err != nil {
		return nil, "", err
	}
	var out *ent.WebhookEndpoint
	err = transaction.Run(ctx, s.Client, func(ctx context.Context, c *ent.Client) error {
		cr := c.WebhookEndpoint.Create().SetURL(u).SetEvents(events).SetSecretSealed(sealed)
		if in.Description != nil {
			cr.SetDescription(strings.TrimSpace(*in.Description))
		}
		if in.Enabled != nil {
			cr.SetEnabled(*in.Enabled)
		}
		if out, err = cr.Save(ctx); err != nil {
			return inputError(err)
		}
		return audit.Decision(ctx, c, "webhook_endpoint.create", "WebhookEndpoint", out.ID, map[string]any{"url": auditURL(u), "events": events})
	})
	if err != nil {
		return nil, "", err
	}
	return out, plain, nil
}

// UpdateEndpoint changes an endpoint of the caller's tenant.
func (s *Service) UpdateEndpoint(ctx context.Context, id int, in EndpointInput) (*ent.WebhookEndpoint, error) {
	var u string
	if in.URL != nil {
		var err error
		if u, err = s.Policy.CheckURL(ctx, *in.URL); err != nil {
			return nil, err
		}
	}
	var events []string
	if in.Events != nil {
		var err error
		if events, err = normalizeEvents(in.Events); err != nil {
			return nil, err
		}
	}
	var out *ent.WebhookEndpoint
	err := transaction.Run(ctx, s.Client, func(ctx context.Context, c *ent.Client) error {
		ep, err := c.WebhookEndpoint.Get(ctx, id)
		if err != nil {
			return notFound(err, "webhook endpoint")
		}
		upd := c.WebhookEndpoint.UpdateOne(ep)
		changes := map[string]any{}
		if in.URL != nil {
			upd.SetURL(u)
			changes["url"] = auditURL(u)
		}
		if in.Description != nil {
			upd.SetDescription(strings.TrimSpace(*in.Description))
			changes["description"] = strings.TrimSpace(*in.Description)
		}
		if events != nil {
			upd.SetEvents(events)
			changes["events"] = events
		}
		if in.Enabled != nil {
			upd.SetEnabled(*in.Enabled)
			changes["enabled"] = *in.Enabled
		}
		if out, err = upd.Save(ctx); err != nil {
			return inputError(err)
		}
		return audit.Decision(ctx, c, "webhook_endpoint.update", "WebhookEndpoint", ep.ID, changes)
	})
	return out, err
}

// DeleteEndpoint removes an endpoint of the caller's tenant with its
// deliveries and their attempts; jobs still queued for them find nothing to
// do.
func (s *Service) DeleteEndpoint(ctx context.Context, id int) error {
	return transaction.Run(ctx, s.Client, func(ctx context.Context, c *ent.Client) error {
		ep, err := c.WebhookEndpoint.Get(ctx, id)
		if err != nil {
			return notFound(err, "webhook endpoint")
		}
		ids, err := c.WebhookDelivery.Query().Where(webhookdelivery.EndpointID(ep.ID)).IDs(ctx)
		if err != nil {
			return err
		}
		for chunk := range slices.Chunk(ids, 1000) {
			if _, err := c.WebhookAttempt.Delete().Where(webhookattempt.DeliveryIDIn(chunk...)).Exec(ctx); err != nil {
				return err
			}
		}
		if _, err := c.WebhookDelivery.Delete().Where(webhookdelivery.EndpointID(ep.ID)).Exec(ctx); err != nil {
			return err
		}
		if err := c.WebhookEndpoint.DeleteOne(ep).Exec(ctx); err != nil {
			return err
		}
		return audit.Decision(ctx, c, "webhook_endpoint.delete", "WebhookEndpoint", ep.ID, map[string]any{"url": auditURL(ep.URL)})
	})
}

// RotateSecret gives an endpoint a new signing secret and returns it, once.
// For RotationOverlap the previous secret signs each delivery too (a second
// v1 in the signature header).
func (s *Service) RotateSecret(ctx context.Context, id int) (*ent.WebhookEndpoint, string, error) {
	plain, err := newSecret()
	if err != nil {
		return nil, "", err
	}
	sealed, err := s.Secrets.Seal(plain)
	if err != nil {
		return nil, "", err
	}
	var out *ent.WebhookEndpoint
	err = transaction.Run(ctx, s.Client, func(ctx context.Context, c *ent.Client) error {
		q := c.WebhookEndpoint.Query().Where(webhookendpoint.ID(id))
		q.Modify(forUpdate)
		ep, err := q.Only(ctx)
		if err != nil {
			return notFound(err, "webhook endpoint")
		}
		if out, err = c.WebhookEndpoint.UpdateOne(ep).SetSecretSealed(sealed).
			SetPreviousSecretSealed(ep.SecretSealed).
			SetPreviousSecretExpiresAt(s.now().Add(RotationOverlap)).Save(ctx); err != nil {
			return err
		}
		return audit.Decision(ctx, c, "webhook_endpoint.rotate_secret", "WebhookEndpoint", ep.ID, nil)
	})
	if err != nil {
		return nil, "", err
	}
	return out, plain, nil
}

// Redeliver posts a delivery of the caller's tenant again, now, with the
// same event id and body. Its status is PENDING until the attempt is made;
// a failed redelivery is retried only while the delivery has automatic
// attempts left.
func (s *Service) Redeliver(ctx context.Context, deliveryID int) (*ent.WebhookDelivery, error) {
	var out *ent.WebhookDelivery
	err := transaction.Run(ctx, s.Client, func(ctx context.Context, c *ent.Client) error {
		q := c.WebhookDelivery.Query().Where(webhookdelivery.ID(deliveryID))
		q.Modify(forUpdateNoWait)
		d, err := q.Only(ctx)
		if lockBusy(err) {
			return apperr.E(apperr.Conflict, "an attempt of this delivery is being made right now: look at its attempts in a few seconds, then redeliver if it failed")
		}
		if err != nil {
			return notFound(err, "webhook delivery")
		}
		now := s.now()
		if out, err = c.WebhookDelivery.UpdateOne(d).SetStatus(webhookdelivery.StatusPENDING).SetNextAttemptAt(now).Save(ctx); err != nil {
			return err
		}
		if err := outbox.Enqueue(ctx, c, jobs.DeliverWebhookArgs{TenantID: d.TenantID, DeliveryID: d.ID, After: d.AttemptCount, Redelivery: true}); err != nil {
			return err
		}
		return audit.Decision(ctx, c, "webhook_delivery.redeliver", "WebhookDelivery", d.ID, map[string]any{"event_id": d.EventID})
	})
	return out, err
}

// auditURL is an endpoint URL without its query, which may carry a
// partner's token.
func auditURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	u.RawQuery, u.Fragment = "", ""
	return u.Redacted()
}

// Retention is how long a settled delivery (DELIVERED or FAILED) and its
// attempts are kept; the PruneWebhookDeliveries schedule removes older ones.
const Retention = 30 * 24 * time.Hour

// pruneBatch bounds one pruning transaction.
const pruneBatch = 1000

// Prune removes the caller's tenant's settled deliveries created before
// before, with their attempts, a batch per transaction, and returns how many
// it removed. Pending deliveries are kept whatever their age.
func (s *Service) Prune(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		n := 0
		err := transaction.Run(ctx, s.Client, func(ctx context.Context, c *ent.Client) error {
			ids, err := c.WebhookDelivery.Query().
				Where(webhookdelivery.StatusIn(webhookdelivery.StatusDELIVERED, webhookdelivery.StatusFAILED),
					webhookdelivery.CreatedAtLT(before)).
				Limit(pruneBatch).IDs(ctx)
			if err != nil || len(ids) == 0 {
				return err
			}
			if _, err := c.WebhookAttempt.Delete().Where(webhookattempt.DeliveryIDIn(ids...)).Exec(ctx); err != nil {
				return err
			}
			n, err = c.WebhookDelivery.Delete().Where(webhookdelivery.IDIn(ids...)).Exec(ctx)
			return err
		})
		total += n
		if err != nil {
			return total, fmt.Errorf("webhook: prune deliveries: %w", err)
		}
		if n < pruneBatch {
			return total, nil
		}
	}
}

// notFound turns ent's not-found into NOT_FOUND for what.
func notFound(err error, what string) error {
	if ent.IsNotFound(err) {
		return apperr.E(apperr.NotFound, "%s not found", what)
	}
	return err
}

// inputError turns ent's validation errors into BAD_USER_INPUT.
func inputError(err error) error {
	if ent.IsValidationError(err) {
		return apperr.Wrap(apperr.BadUserInput, err, "%s", strings.TrimPrefix(err.Error(), "ent: "))
	}
	return err
}
