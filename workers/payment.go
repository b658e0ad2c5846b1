package workers

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"entgo.io/ent/dialect/sql"
	"github.com/gocraft/work"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/payment"
	"github.com/ispgraph/ispgraph/ent/paymentgateway"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/payverify"
)

// PaymentCompleter completes or fails a pending payment. It is the seam to
// internal/billing's payment completion (built in the billing issue). Both
// methods must be idempotent: completing a payment that is no longer PENDING
// changes nothing and returns nil.
type PaymentCompleter interface {
	// CompletePayment marks a PENDING payment COMPLETED (paid now) and
	// applies its amount to its invoice, in one transaction.
	CompletePayment(ctx context.Context, paymentID int, providerRef string) error
	// FailPayment marks a PENDING payment FAILED with reason.
	FailPayment(ctx context.Context, paymentID int, reason string) error
}

// GatewayCredentials returns a gateway's decrypted configuration (API keys).
type GatewayCredentials func(ctx context.Context, gw *ent.PaymentGateway) (map[string]string, error)

// PaymentHandler runs ProcessPayment: it verifies a gateway payment with its
// provider, then completes or fails it. A payment that is no longer PENDING
// is left alone, so a second run changes nothing.
type PaymentHandler struct {
	Client      *ent.Client
	Completer   PaymentCompleter
	Verifiers   map[string]payverify.Verifier
	Credentials GatewayCredentials
	Logger      *slog.Logger
}

// Process is the ProcessPayment handler.
func (h *PaymentHandler) Process(job *work.Job) error {
	var a jobs.ProcessPaymentArgs
	if err := decode(job, &a, func() int { return a.TenantID }); err != nil {
		return err
	}
	ctx, cancel := tenantContext(job.Name, a.TenantID)
	defer cancel()
	log := h.Logger.With("job", job.Name, "job_id", job.ID, "tenant_id", a.TenantID, "payment_id", a.PaymentID)

	p, err := h.Client.Payment.Query().Where(payment.ID(a.PaymentID)).WithGateway().Only(ctx)
	if ent.IsNotFound(err) {
		log.Warn("payment not found: nothing to process")
		return nil
	}
	if err != nil {
		return fmt.Errorf("load payment: %w", err)
	}
	if p.Status != payment.StatusPENDING {
		log.Info("payment already processed", "status", p.Status)
		return nil
	}
	ref, txid := "", ""
	if p.TransactionID != nil {
		txid = *p.TransactionID
	}
	gw := p.Edges.Gateway
	switch {
	case gw == nil && p.Method == payment.MethodGATEWAY:
		return fmt.Errorf("gateway payment %s has no gateway to verify it with: it stays pending", p.Number)
	case gw != nil && gw.Provider != paymentgateway.ProviderMANUAL && txid == "":
		log.Info("gateway payment without a transaction id")
		return h.Completer.FailPayment(ctx, p.ID, "no gateway transaction id to verify the payment with")
	}
	if gw != nil && gw.Provider != paymentgateway.ProviderMANUAL {
		v := h.Verifiers[string(gw.Provider)]
		if v == nil {
			return fmt.Errorf("no verification client for provider %s: the payment stays pending", gw.Provider)
		}
		var creds map[string]string
		if h.Credentials != nil {
			if creds, err = h.Credentials(ctx, gw); err != nil {
				return fmt.Errorf("gateway credentials: %w", err)
			}
		}
		res, err := v.Verify(ctx, creds, txid)
		if err != nil {
			return err
		}
		if res.Payload != nil {
			if err := h.Client.Payment.Update().
				Where(payment.ID(p.ID), payment.StatusEQ(payment.StatusPENDING)).
				SetGatewayPayload(res.Payload).Exec(ctx); err != nil {
				return fmt.Errorf("store provider answer: %w", err)
			}
		}
		if !res.Succeeded {
			log.Info("provider reports the payment failed", "reason", res.Reason)
			return h.Completer.FailPayment(ctx, p.ID, res.Reason)
		}
		if res.Amount < p.Amount {
			reason := fmt.Sprintf("the provider received %s, the payment is for %s", res.Amount, p.Amount)
			log.Warn("amount mismatch", "reason", reason)
			return h.Completer.FailPayment(ctx, p.ID, reason)
		}
		ref = res.Reference
	}
	if err := h.Completer.CompletePayment(ctx, p.ID, ref); err != nil {
		return err
	}
	log.Info("payment completed", "provider_ref", ref)
	return nil
}

// EntPayments is a minimal PaymentCompleter on ent, standing in until the
// billing issue's service replaces it: a conditional PENDING→COMPLETED update
// (the row lock of that UPDATE serialises concurrent runs), then the invoice's
// amount_paid is increased and the invoice marked PAID once covered, all in
// one transaction.
type EntPayments struct {
	Client *ent.Client
	Now    func() time.Time
}

func (e *EntPayments) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// CompletePayment implements PaymentCompleter.
func (e *EntPayments) CompletePayment(ctx context.Context, paymentID int, providerRef string) error {
	return e.inTx(ctx, func(tx *ent.Tx) error {
		now := e.now()
		n, err := tx.Payment.Update().
			Where(payment.ID(paymentID), payment.StatusEQ(payment.StatusPENDING)).
			SetStatus(payment.StatusCOMPLETED).SetPaidAt(now).Save(ctx)
		if err != nil || n == 0 {
			return err // n == 0: already completed, failed or refunded
		}
		p, err := tx.Payment.Get(ctx, paymentID)
		if err != nil {
			return err
		}
		if p.InvoiceID == nil {
			return nil
		}
		if err := tx.Invoice.UpdateOneID(*p.InvoiceID).AddAmountPaid(p.Amount).Exec(ctx); err != nil {
			return fmt.Errorf("apply payment to invoice: %w", err)
		}
		return tx.Invoice.Update().
			Where(invoice.ID(*p.InvoiceID), invoice.StatusIn(invoice.StatusPENDING, invoice.StatusOVERDUE),
				func(s *sql.Selector) { s.Where(sql.ColumnsGTE(s.C(invoice.FieldAmountPaid), s.C(invoice.FieldTotal))) }).
			SetStatus(invoice.StatusPAID).SetPaidAt(now).Exec(ctx)
	})
}

// FailPayment implements PaymentCompleter.
func (e *EntPayments) FailPayment(ctx context.Context, paymentID int, reason string) error {
	return e.Client.Payment.Update().
		Where(payment.ID(paymentID), payment.StatusEQ(payment.StatusPENDING)).
		SetStatus(payment.StatusFAILED).SetFailureReason(truncate(reason, 500)).Exec(ctx)
}

func (e *EntPayments) inTx(ctx context.Context, fn func(*ent.Tx) error) error {
	tx, err := e.Client.Tx(ctx)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// SealedCredentials reads gateway configuration stored as AES-256-GCM of its
// JSON (nonce first) under the instance secret key.
func SealedCredentials(key []byte) GatewayCredentials {
	return func(_ context.Context, gw *ent.PaymentGateway) (map[string]string, error) {
		if len(gw.ConfigEncrypted) == 0 {
			return map[string]string{}, nil
		}
		gcm, err := newGCM(key)
		if err != nil {
			return nil, err
		}
		ns := gcm.NonceSize()
		if len(gw.ConfigEncrypted) < ns {
			return nil, errors.New("gateway configuration is corrupt")
		}
		plain, err := gcm.Open(nil, gw.ConfigEncrypted[:ns], gw.ConfigEncrypted[ns:], nil)
		if err != nil {
			return nil, errors.New("gateway configuration does not decrypt with this secret key")
		}
		out := map[string]string{}
		if err := json.Unmarshal(plain, &out); err != nil {
			return nil, errors.New("gateway configuration is not a JSON object of strings")
		}
		return out, nil
	}
}

// SealCredentials encrypts gateway configuration the way SealedCredentials reads it.
func SealCredentials(key []byte, cfg map[string]string) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return gcm.Seal(nonce, nonce, plain, nil), nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	return cipher.NewGCM(block)
}
