package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/webhookdelivery"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/outbox"
	"github.com/ispgraph/ispgraph/internal/transaction"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// maxAnswer is how much of an endpoint's answer is read (and thrown away):
// enough to reuse the connection, never a memory sink.
const maxAnswer = 64 << 10

// maxErrLen bounds a recorded attempt error.
const maxErrLen = 300

// forUpdate locks the selected rows on Postgres (SQLite's transactions are
// already exclusive).
func forUpdate(s *sql.Selector) {
	if s.Dialect() == dialect.Postgres {
		s.ForUpdate()
	}
}

// forUpdateNoWait locks the selected rows on Postgres or fails at once
// (lockBusy) when another transaction holds them: a delivery attempt in
// flight holds its row for as long as the request takes.
func forUpdateNoWait(s *sql.Selector) {
	if s.Dialect() == dialect.Postgres {
		s.ForUpdate(sql.WithLockAction(sql.NoWait))
	}
}

// lockBusy reports Postgres's lock_not_available (55P03).
func lockBusy(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "55P03"
}

// Deliver makes one attempt of a delivery (the DeliverWebhook job), in one
// transaction that holds the delivery's row: a second job for the same
// delivery waits, then finds the attempt made and does nothing. The attempt
// is recorded whatever its outcome; a 2xx answer makes the delivery
// DELIVERED, anything else schedules the next attempt through the outbox
// after Backoff, or makes it FAILED when the attempts are used up. Only a
// failure to read or record (the database) is returned, for the queue to
// retry.
func (s *Service) Deliver(ctx context.Context, a jobs.DeliverWebhookArgs) error {
	ctx = viewer.ForTenant(ctx, a.TenantID)
	return transaction.Run(ctx, s.Client, func(ctx context.Context, c *ent.Client) error {
		q := c.WebhookDelivery.Query().Where(webhookdelivery.ID(a.DeliveryID)).WithEndpoint()
		q.Modify(forUpdate)
		d, err := q.Only(ctx)
		if ent.IsNotFound(err) {
			return nil // its endpoint was deleted
		}
		if err != nil {
			return fmt.Errorf("webhook: load delivery %d: %w", a.DeliveryID, err)
		}
		if d.Status != webhookdelivery.StatusPENDING || d.AttemptCount != a.After {
			return nil // another job made this attempt
		}
		ep := d.Edges.Endpoint
		if !ep.Enabled && !a.Redelivery {
			return c.WebhookDelivery.UpdateOne(d).SetStatus(webhookdelivery.StatusFAILED).ClearNextAttemptAt().Exec(ctx)
		}
		secrets, err := s.signingSecrets(ep)
		if err != nil {
			return err
		}
		started := s.now()
		code, postErr := s.post(ctx, ep.URL, d, secrets)
		took := s.now().Sub(started)
		at := c.WebhookAttempt.Create().SetDeliveryID(d.ID).SetAttemptedAt(started).
			SetDurationMs(int(took.Milliseconds())).SetRedelivery(a.Redelivery)
		if code > 0 {
			at.SetStatusCode(code)
		}
		ok := postErr == nil && code >= 200 && code < 300
		if !ok {
			msg := "answered HTTP " + strconv.Itoa(code)
			if postErr != nil {
				msg = postErr.Error()
			}
			if len(msg) > maxErrLen {
				msg = msg[:maxErrLen]
			}
			at.SetError(msg)
		}
		if err := at.Exec(ctx); err != nil {
			return fmt.Errorf("webhook: record attempt: %w", err)
		}
		n := d.AttemptCount + 1
		upd := c.WebhookDelivery.UpdateOne(d).SetAttemptCount(n)
		switch {
		case ok:
			upd.SetStatus(webhookdelivery.StatusDELIVERED).SetDeliveredAt(s.now()).ClearNextAttemptAt()
		case n >= s.Attempts:
			upd.SetStatus(webhookdelivery.StatusFAILED).ClearNextAttemptAt()
			s.log().WarnContext(ctx, "webhook delivery failed for good", "tenant", d.TenantID, "delivery", d.ID, "event", d.EventID, "attempts", n)
		default:
			next := s.now().Add(s.Backoff(n))
			upd.SetNextAttemptAt(next)
			if err := outbox.Enqueue(ctx, c, jobs.DeliverWebhookArgs{TenantID: d.TenantID, DeliveryID: d.ID, After: n},
				outbox.After(next), outbox.DedupKey(fmt.Sprintf("webhook:%d:%d", d.ID, n))); err != nil {
				return err
			}
		}
		return upd.Exec(ctx)
	})
}

// signingSecrets opens an endpoint's secret, and its previous one while the
// rotation overlap lasts.
func (s *Service) signingSecrets(ep *ent.WebhookEndpoint) ([]string, error) {
	cur, err := s.Secrets.Open(ep.SecretSealed)
	if err != nil {
		return nil, fmt.Errorf("webhook: open the secret of endpoint %d: %w", ep.ID, err)
	}
	out := []string{cur}
	if ep.PreviousSecretSealed != nil && ep.PreviousSecretExpiresAt != nil && s.now().Before(*ep.PreviousSecretExpiresAt) {
		if prev, err := s.Secrets.Open(*ep.PreviousSecretSealed); err == nil {
			out = append(out, prev)
		}
	}
	return out, nil
}

// post sends the delivery's body to url, signed, and returns the HTTP
// status (0 when no answer came).
func (s *Service) post(ctx context.Context, url string, d *ent.WebhookDelivery, secrets []string) (int, error) {
	body := []byte(d.Payload)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("bad endpoint url: %w", err)
	}
	now := s.now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ispgraph-webhooks/1")
	req.Header.Set(HeaderID, d.EventID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(now, body, secrets...))
	resp, err := s.HTTP.Do(req)
	if err != nil {
		var ue interface{ Timeout() bool }
		if errors.As(err, &ue) && ue.Timeout() {
			return 0, errors.New("no answer within the time limit")
		}
		if errors.Is(err, errAddressNotAllowed) {
			return 0, errors.New("refused: the endpoint resolves to a private, loopback or link-local address (webhooks go to public addresses only)")
		}
		return 0, scrub(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return resp.StatusCode, fmt.Errorf("answered HTTP %d: redirects are not followed", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// scrub keeps the cause of a transport error without the request line.
func scrub(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && ue.Unwrap() != nil {
		return ue.Unwrap()
	}
	return err
}
