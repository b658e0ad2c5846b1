package resolvers

import (
	"time"

	"github.com/ispgraph/ispgraph/ent/hotspotuser"
	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/payment"
	"github.com/ispgraph/ispgraph/ent/predicate"
	"github.com/ispgraph/ispgraph/internal/billing"
)

// The original system's query scopes that the generated where-input fields
// do not already express. Each is a predicate added by an extended
// where-input field (graph/query.graphqls), so it composes with and/or/not
// and works on nested connections too.

// timeRelativeScopes are the where-input fields below whose predicate
// depends on the current time: a count filtered by one is never cached.
var timeRelativeScopes = map[string]bool{"notExpired": true, "overdue": true}

// networkUserSearch matches username, e-mail or phone, ignoring case.
func networkUserSearch(text string) predicate.NetworkUser {
	return networkuser.Or(
		networkuser.UsernameContainsFold(text),
		networkuser.EmailContainsFold(text),
		networkuser.PhoneContainsFold(text),
	)
}

func networkUserNotExpired(want bool, now time.Time) predicate.NetworkUser {
	if want {
		return networkuser.Or(networkuser.ExpiresAtIsNil(), networkuser.ExpiresAtGT(now))
	}
	return networkuser.ExpiresAtLTE(now)
}

// invoiceOverdue is billing's overdue rule, or its negation.
func invoiceOverdue(want bool, now time.Time) predicate.Invoice {
	if want {
		return billing.Overdue(now)
	}
	return invoice.Not(billing.Overdue(now))
}

func hotspotActive(want bool) predicate.HotspotUser {
	p := hotspotuser.And(hotspotuser.StatusEQ(hotspotuser.StatusACTIVE), hotspotuser.Verified(true))
	if want {
		return p
	}
	return hotspotuser.Not(p)
}

func hotspotNotExpired(want bool, now time.Time) predicate.HotspotUser {
	if want {
		return hotspotuser.Or(hotspotuser.ExpiresAtIsNil(), hotspotuser.ExpiresAtGT(now))
	}
	return hotspotuser.ExpiresAtLTE(now)
}

func paidBetween(from, to *time.Time) predicate.Payment {
	ps := []predicate.Payment{payment.PaidAtNotNil()}
	if from != nil {
		ps = append(ps, payment.PaidAtGTE(*from))
	}
	if to != nil {
		ps = append(ps, payment.PaidAtLT(*to))
	}
	return payment.And(ps...)
}
