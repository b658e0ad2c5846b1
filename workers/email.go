package workers

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"entgo.io/ent/dialect/sql"
	"github.com/gocraft/work"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/notification"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/notify"
)

// InvoiceEmailHandler runs SendInvoiceEmail: it renders the invoice e-mail of
// one kind and sends it over SMTP to the subscriber, from the tenant's own
// sender when its settings name one, recording the delivery in
// a Notification row. The row is unique per invoice, kind and recipient and
// is claimed (locked) for the whole send, so the e-mail is sent at most once
// per invoice and kind, however many jobs ask for it (a crash between the
// relay's acceptance and the SENT mark is the one window in which a retry
// sends again; the Message-ID is stable so mailboxes can tell).
type InvoiceEmailHandler struct {
	Client *ent.Client
	Mailer *notify.Mailer
	Logger *slog.Logger
}

// Send is the SendInvoiceEmail handler.
func (h *InvoiceEmailHandler) Send(job *work.Job) error {
	var a jobs.SendInvoiceEmailArgs
	if err := decode(job, &a, func() int { return a.TenantID }); err != nil {
		return err
	}
	ctx, cancel := tenantContext(job.Name, a.TenantID)
	defer cancel()
	log := h.Logger.With("job", job.Name, "job_id", job.ID, "tenant_id", a.TenantID, "invoice_id", a.InvoiceID, "kind", a.EmailKind)

	inv, err := h.Client.Invoice.Get(ctx, a.InvoiceID)
	if ent.IsNotFound(err) {
		log.Warn("invoice not found: no e-mail")
		return nil
	}
	if err != nil {
		return fmt.Errorf("load invoice: %w", err)
	}
	nu, err := inv.QueryNetworkUser().Only(ctx)
	if err != nil {
		return fmt.Errorf("load subscriber: %w", err)
	}
	if nu.Email == "" {
		log.Info("subscriber has no e-mail address: nothing to send")
		return nil
	}
	ten, err := h.Client.Tenant.Get(ctx, a.TenantID)
	if err != nil {
		return fmt.Errorf("load tenant: %w", err)
	}
	loc, err := time.LoadLocation(ten.Timezone)
	if err != nil {
		loc = time.UTC
	}
	day := func(t time.Time) string { return t.In(loc).Format("2006-01-02") }
	mail, err := notify.InvoiceMail(nu.Email, notify.InvoiceMailData{
		Kind: a.EmailKind, TenantName: ten.Name, CustomerName: nu.FullName, Number: inv.Number,
		Total: inv.Total.In(ten.Currency), AmountDue: (inv.Total - inv.AmountPaid).In(ten.Currency), Currency: ten.Currency,
		DueDate: day(inv.DueDate), PeriodStart: day(inv.PeriodStart), PeriodEnd: day(inv.PeriodEnd),
	})
	if err != nil {
		log.Error("cannot render the invoice e-mail", "error", err)
		return nil // a bad kind does not get better with retries
	}
	kind := "invoice_" + a.EmailKind
	n, err := deliveryRow(ctx, h.Client, notification.ChannelEMAIL, kind, nu.Email, &inv.ID, mail.Subject, mail.Text)
	if err != nil {
		return err
	}
	if n.Status != notification.StatusQUEUED {
		log.Info("invoice e-mail already sent", "notification_id", n.ID, "status", n.Status)
		return nil
	}
	mail.MessageID = fmt.Sprintf("notification-%d-%d@ispgraph", a.TenantID, n.ID)
	if snd, ok := notify.MailSenderFromSettings(ten.Settings); ok {
		mail.Sender = &snd // the tenant's own sender (updateTenantSettings)
	}

	// The claim is an UPDATE in a transaction that stays open while the
	// mail is sent: the row stays locked, so a second job for the same
	// e-mail (a duplicate enqueue, an outbox row reopened) waits for this
	// one and then finds the row SENT. A compare-and-set on its own is not
	// enough: a job that reads the row after this one's claim but before
	// its SENT mark would claim it again. If this process dies mid-send the
	// transaction rolls back and a retry sends (the Message-ID is stable).
	tx, err := h.Client.Tx(ctx)
	if err != nil {
		return fmt.Errorf("claim delivery: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // a no-op after Commit
	claimed, err := tx.Notification.Update().
		Where(notification.ID(n.ID), notification.StatusEQ(notification.StatusQUEUED)).
		AddAttempts(1).Save(ctx)
	if err != nil {
		return fmt.Errorf("claim delivery: %w", err)
	}
	if claimed == 0 {
		log.Info("invoice e-mail already sent by another job", "notification_id", n.ID)
		return nil
	}
	if h.Mailer == nil {
		err = notify.ErrNoRelay
	} else {
		err = h.Mailer.Send(ctx, mail)
	}
	if err != nil {
		upd := tx.Notification.UpdateOneID(n.ID).SetError(truncate(err.Error(), 500))
		if notify.IsPermanent(err) {
			log.Warn("the mail relay refused the invoice e-mail", "error", err)
			if uerr := upd.SetStatus(notification.StatusFAILED).Exec(ctx); uerr != nil {
				return uerr
			}
			return tx.Commit()
		}
		if uerr := upd.Exec(ctx); uerr != nil {
			log.Error("record e-mail failure", "error", uerr)
		} else if cerr := tx.Commit(); cerr != nil {
			log.Error("record e-mail failure", "error", cerr)
		}
		return err
	}
	log.Info("invoice e-mail sent", "to", nu.Email, "notification_id", n.ID)
	if err := tx.Notification.UpdateOneID(n.ID).
		SetStatus(notification.StatusSENT).SetSentAt(time.Now()).SetProviderRef(mail.MessageID).ClearError().Exec(ctx); err != nil {
		return fmt.Errorf("record e-mail sent: %w", err)
	}
	return tx.Commit()
}

// deliveryRow creates (once) the delivery row for one recipient, unique per
// invoice, kind and recipient, and returns it as it is now.
func deliveryRow(ctx context.Context, client *ent.Client, ch notification.Channel, kind, to string, invoiceID *int, subject, body string) (*ent.Notification, error) {
	err := client.Notification.Create().
		SetChannel(ch).SetKind(kind).SetRecipient(to).SetNillableInvoiceID(invoiceID).
		SetSubject(subject).SetBody(body).
		OnConflict(sql.ConflictColumns(notification.FieldTenantID, notification.FieldInvoiceID, notification.FieldKind, notification.FieldRecipient)).
		DoNothing().Exec(ctx)
	if err != nil && !errors.Is(err, stdsql.ErrNoRows) {
		return nil, fmt.Errorf("record delivery: %w", err)
	}
	q := client.Notification.Query().Where(notification.Kind(kind), notification.Recipient(to))
	if invoiceID != nil {
		q = q.Where(notification.InvoiceID(*invoiceID))
	}
	n, err := q.Only(ctx)
	if err != nil {
		return nil, fmt.Errorf("load delivery: %w", err)
	}
	return n, nil
}

// StaffEmailHandler runs SendStaffEmail: the one-time setup link of a staff
// invitation or password reset, made and sent by the auth service.
type StaffEmailHandler struct {
	Auth *auth.Service
}

// Send is the SendStaffEmail handler.
func (h *StaffEmailHandler) Send(job *work.Job) error {
	var a jobs.SendStaffEmailArgs
	if err := decode(job, &a, func() int { return a.TenantID }); err != nil {
		return err
	}
	ctx, cancel := tenantContext(job.Name, a.TenantID)
	defer cancel()
	return h.Auth.SendSetupEmail(ctx, a.TenantID, a.UserID, a.EmailKind)
}
