package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/notification"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/outbox"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// EnqueueInvoiceEmail writes a SendInvoiceEmail job into the outbox through
// client (a mutation's transaction, or the root client), once per invoice and
// kind.
func EnqueueInvoiceEmail(ctx context.Context, client *ent.Client, tenantID, invoiceID int, kind string) error {
	return outbox.Enqueue(ctx, client,
		jobs.SendInvoiceEmailArgs{TenantID: tenantID, InvoiceID: invoiceID, EmailKind: kind},
		outbox.DedupKey(fmt.Sprintf("invoice-email:%d:%s", invoiceID, kind)))
}

// BulkSmsRequest says who gets a bulk SMS: an explicit list of phone numbers,
// or every subscriber matching the filter (with a phone number).
type BulkSmsRequest struct {
	Message     string
	Phones      []string
	Status      *networkuser.Status
	ServiceType *networkuser.ServiceType
	PackageID   *int
}

// MaxSmsLength bounds one message (ten 160-character segments).
const MaxSmsLength = 1600

// RequestBulkSms writes one QUEUED notification per distinct recipient under a
// new batch id and the batch's SendBulkSms job, through client (the caller's
// transaction). It returns the batch id and the number of recipients.
func RequestBulkSms(ctx context.Context, client *ent.Client, req BulkSmsRequest) (string, int, error) {
	v := viewer.FromContext(ctx)
	if !v.HasTenant() {
		return "", 0, apperr.E(apperr.Unauthenticated, "log in first")
	}
	msg := strings.TrimSpace(req.Message)
	if msg == "" || len(msg) > MaxSmsLength {
		return "", 0, apperr.E(apperr.BadUserInput, "the message must be 1 to %d characters", MaxSmsLength)
	}
	phones := req.Phones
	filtered := req.Status != nil || req.ServiceType != nil || req.PackageID != nil
	if len(phones) > 0 && filtered {
		return "", 0, apperr.E(apperr.BadUserInput, "give either phone numbers or a subscriber filter, not both")
	}
	if len(phones) == 0 {
		if !filtered {
			return "", 0, apperr.E(apperr.BadUserInput, "give phone numbers or a subscriber filter (status, service type, package)")
		}
		q := client.NetworkUser.Query().Where(networkuser.PhoneNEQ(""))
		if req.Status != nil {
			q = q.Where(networkuser.StatusEQ(*req.Status))
		}
		if req.ServiceType != nil {
			q = q.Where(networkuser.ServiceTypeEQ(*req.ServiceType))
		}
		if req.PackageID != nil {
			// A package of another tenant (or none) is not found, not "no recipients".
			if _, err := client.ServicePackage.Get(ctx, *req.PackageID); err != nil {
				return "", 0, err
			}
			q = q.Where(networkuser.PackageID(*req.PackageID))
		}
		var err error
		if phones, err = q.Select(networkuser.FieldPhone).Strings(ctx); err != nil {
			return "", 0, err
		}
	}
	seen := map[string]bool{}
	var to []string
	for _, p := range phones {
		p = strings.TrimSpace(p)
		if p == "" || seen[p] {
			continue
		}
		seen[p] = true
		to = append(to, p)
	}
	if len(to) == 0 {
		return "", 0, apperr.E(apperr.BadUserInput, "no recipients: the list is empty or no subscriber matching the filter has a phone number")
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	batch := "sms-" + hex.EncodeToString(b)
	const chunk = 1000
	for i := 0; i < len(to); i += chunk {
		part := to[i:min(i+chunk, len(to))]
		err := client.Notification.MapCreateBulk(part, func(c *ent.NotificationCreate, i int) {
			c.SetChannel(notification.ChannelSMS).SetKind("bulk_sms").SetRecipient(part[i]).SetBody(msg).SetBatchID(batch)
		}).Exec(ctx)
		if err != nil {
			return "", 0, err
		}
	}
	if err := outbox.Enqueue(ctx, client, jobs.SendBulkSmsArgs{TenantID: v.TenantID, BatchID: batch}); err != nil {
		return "", 0, err
	}
	return batch, len(to), nil
}
