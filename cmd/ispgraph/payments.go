package main

import (
	"net/http"
	"time"

	"github.com/ispgraph/ispgraph/internal/gateway"
)

// gateways builds the one gateway service (sealed configuration, provider
// clients) the API and the payment job share.
func (m *Main) gateways() (*gateway.Service, error) {
	c := m.Config
	return gateway.New(m.Secrets, &http.Client{Timeout: 30 * time.Second}, gateway.BaseURLs{
		Stripe: c.StripeBaseURL, SSLCommerz: c.SSLCommerzBaseURL, BKash: c.BKashBaseURL,
	})
}
