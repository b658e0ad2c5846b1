package billing

import (
	"slices"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/predicate"
)

// transitions lists, per invoice status, the statuses it may move to:
//
//	DRAFT     → PENDING (issued), CANCELLED
//	PENDING   → PAID (amount paid reaches the total), OVERDUE (after the due date), CANCELLED
//	OVERDUE   → PAID, CANCELLED
//	PAID      → PENDING or OVERDUE (a refund reopens it)
//	CANCELLED → nothing
var transitions = map[invoice.Status][]invoice.Status{
	invoice.StatusDRAFT:     {invoice.StatusPENDING, invoice.StatusCANCELLED},
	invoice.StatusPENDING:   {invoice.StatusPAID, invoice.StatusOVERDUE, invoice.StatusCANCELLED},
	invoice.StatusOVERDUE:   {invoice.StatusPAID, invoice.StatusCANCELLED},
	invoice.StatusPAID:      {invoice.StatusPENDING, invoice.StatusOVERDUE},
	invoice.StatusCANCELLED: {},
}

// CanTransition reports whether an invoice may move from one status to another.
func CanTransition(from, to invoice.Status) bool {
	return slices.Contains(transitions[from], to)
}

// checkTransition refuses a status change the state machine does not allow,
// saying what to do instead.
func checkTransition(inv *ent.Invoice, to invoice.Status) error {
	if CanTransition(inv.Status, to) {
		return nil
	}
	hint := ""
	switch {
	case inv.Status == invoice.StatusCANCELLED:
		hint = ": a cancelled invoice is final"
	case inv.Status == invoice.StatusPAID && to == invoice.StatusCANCELLED:
		hint = ": refund its payments first"
	case inv.Status == invoice.StatusDRAFT:
		hint = ": issue it first"
	}
	return conflict("invoice %s is %s and cannot become %s%s", inv.Number, inv.Status, to, hint)
}

// Overdue selects overdue invoices: OVERDUE, or PENDING with the due date
// passed (the overdue routine may not have marked them yet). It is the one
// definition of "overdue": the API's overdue scope, the reports and the
// reminders call it.
func Overdue(now time.Time) predicate.Invoice {
	return invoice.Or(invoice.StatusEQ(invoice.StatusOVERDUE), PastDue(now))
}

// PastDue selects PENDING invoices whose due date has passed: the ones the
// overdue routine marks OVERDUE.
func PastDue(now time.Time) predicate.Invoice {
	return invoice.And(invoice.StatusEQ(invoice.StatusPENDING), invoice.DueDateLT(now))
}

// IsPastDue reports whether an invoice's due date has passed at now (the
// in-memory form of PastDue's date test).
func IsPastDue(inv *ent.Invoice, now time.Time) bool { return inv.DueDate.Before(now) }
