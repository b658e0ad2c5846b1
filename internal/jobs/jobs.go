// Package jobs owns the names and typed arguments of every background job, and
// the one place they convert to and from the queue's map. Mutations write jobs
// into the outbox with these types; workers decode them with the same types.
package jobs

import (
	"encoding/json"
	"fmt"
)

// Job names, as registered with the queue.
const (
	SendInvoiceEmail      = "SendInvoiceEmail"
	ProcessPayment        = "ProcessPayment"
	GenerateBillingReport = "GenerateBillingReport"
	SyncMikrotikSession   = "SyncMikrotikSession"
	SendBulkSms           = "SendBulkSms"
	RouterProvision       = "RouterProvision"
	HotspotProvision      = "HotspotProvision"
	ReconcileRouter       = "ReconcileRouter"
	SendStaffEmail        = "SendStaffEmail"
	CheckRouterHealth     = "CheckRouterHealth"
	SendHotspotOtp        = "SendHotspotOtp"
	DeliverWebhook        = "DeliverWebhook"
)

// Args is implemented by every job's argument struct.
type Args interface {
	// Kind is the job name the arguments belong to.
	Kind() string
}

// SendInvoiceEmailArgs asks for an invoice e-mail of one kind.
type SendInvoiceEmailArgs struct {
	TenantID  int    `json:"tenant_id"`
	InvoiceID int    `json:"invoice_id"`
	EmailKind string `json:"kind"` // new | reminder | overdue
}

// Kind implements Args.
func (SendInvoiceEmailArgs) Kind() string { return SendInvoiceEmail }

// SendStaffEmailArgs asks for a staff user's one-time setup link to be
// e-mailed: an invitation or a password reset. The link's token is made by
// the job, so it is never stored anywhere but in the e-mail (the database
// keeps its hash).
type SendStaffEmailArgs struct {
	TenantID  int    `json:"tenant_id"`
	UserID    int    `json:"user_id"`
	EmailKind string `json:"kind"` // invite | reset
}

// Kind implements Args.
func (SendStaffEmailArgs) Kind() string { return SendStaffEmail }

// ProcessPaymentArgs asks for a pending payment to be verified and completed.
type ProcessPaymentArgs struct {
	TenantID  int `json:"tenant_id"`
	PaymentID int `json:"payment_id"`
}

// Kind implements Args.
func (ProcessPaymentArgs) Kind() string { return ProcessPayment }

// GenerateBillingReportArgs asks for a stored report to be computed.
type GenerateBillingReportArgs struct {
	TenantID int `json:"tenant_id"`
	ReportID int `json:"report_id"`
}

// Kind implements Args.
func (GenerateBillingReportArgs) Kind() string { return GenerateBillingReport }

// SyncMikrotikSessionArgs asks for one router's sessions to be synced,
// optionally for one username.
type SyncMikrotikSessionArgs struct {
	TenantID int    `json:"tenant_id"`
	RouterID int    `json:"router_id"`
	Username string `json:"username,omitempty"`
}

// Kind implements Args.
func (SyncMikrotikSessionArgs) Kind() string { return SyncMikrotikSession }

// SendBulkSmsArgs asks for one bulk SMS batch (its notifications rows) to be sent.
type SendBulkSmsArgs struct {
	TenantID int    `json:"tenant_id"`
	BatchID  string `json:"batch_id"`
}

// Kind implements Args.
func (SendBulkSmsArgs) Kind() string { return SendBulkSms }

// RouterProvisionArgs asks for a subscriber's state to be carried to its router:
// action is one of upsert | disable | enable | remove | kick.
type RouterProvisionArgs struct {
	TenantID      int    `json:"tenant_id"`
	NetworkUserID int    `json:"network_user_id"`
	RouterID      int    `json:"router_id"`
	Action        string `json:"action"`
	Username      string `json:"username,omitempty"`
}

// Kind implements Args.
func (RouterProvisionArgs) Kind() string { return RouterProvision }

// HotspotProvisionArgs asks for a hotspot user's state to be carried to one
// router: created or updated (/ip/hotspot/user) while active, disabled and its
// session removed once suspended or expired.
type HotspotProvisionArgs struct {
	TenantID      int `json:"tenant_id"`
	HotspotUserID int `json:"hotspot_user_id"`
	RouterID      int `json:"router_id"`
	// Username is set when the user was deleted: its item is removed.
	Username string `json:"username,omitempty"`
}

// Kind implements Args.
func (HotspotProvisionArgs) Kind() string { return HotspotProvision }

// ReconcileRouterArgs asks for one router to be made to match the books
// (mikrotik.Service.Reconcile).
type ReconcileRouterArgs struct {
	TenantID int `json:"tenant_id"`
	RouterID int `json:"router_id"`
}

// Kind implements Args.
func (ReconcileRouterArgs) Kind() string { return ReconcileRouter }

// CheckRouterHealthArgs asks for one router's health check
// (mikrotik.Service.Check): its figures are stored on the router.
type CheckRouterHealthArgs struct {
	TenantID int `json:"tenant_id"`
	RouterID int `json:"router_id"`
}

// Kind implements Args.
func (CheckRouterHealthArgs) Kind() string { return CheckRouterHealth }

// SendHotspotOtpArgs asks for the sign-up code of one hotspot OTP request to
// be made and sent (mikrotik.Service.SendOTP); NotificationID is its
// delivery row.
type SendHotspotOtpArgs struct {
	TenantID       int    `json:"tenant_id"`
	HotspotUserID  int    `json:"hotspot_user_id"`
	NotificationID int    `json:"notification_id"`
	RequestID      string `json:"request_id"`
}

// Kind implements Args.
func (SendHotspotOtpArgs) Kind() string { return SendHotspotOtp }

// DeliverWebhookArgs asks for one attempt of a webhook delivery
// (webhook.Service.Deliver). After is how many attempts the delivery had when
// the job was written: the job does nothing once another job has made that
// attempt, so a job run twice (the outbox sweep, a crash) posts once more at
// most. Redelivery marks an attempt staff asked for.
type DeliverWebhookArgs struct {
	TenantID   int  `json:"tenant_id"`
	DeliveryID int  `json:"delivery_id"`
	After      int  `json:"after"`
	Redelivery bool `json:"redelivery,omitempty"`
}

// Kind implements Args.
func (DeliverWebhookArgs) Kind() string { return DeliverWebhook }

// ToMap converts arguments to the queue's map form.
func ToMap(a Args) (map[string]any, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("jobs: encode %s: %w", a.Kind(), err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("jobs: encode %s: %w", a.Kind(), err)
	}
	return m, nil
}

// FromMap decodes the queue's map form into dst (a pointer to an Args struct).
func FromMap(m map[string]any, dst Args) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("jobs: decode %s: %w", dst.Kind(), err)
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return fmt.Errorf("jobs: decode %s: %w", dst.Kind(), err)
	}
	return nil
}
