package main

import (
	"net/http"
	"time"

	"github.com/ispgraph/ispgraph/internal/gateway"
)

// gateways builds the one gateway service (sealed configuration, provider
// clients) the API and the payment job share.
func (m *Main) gateways() (*gateway.Service, error) {
	box, err := m.secretBox()
	if err != nil {
		return nil, err
	}
	c := m.Config
	return gateway.New(box, &http.Client{Timeout: 30 * time.Second}, gateway.BaseURLs{
		Stripe: c.StripeBaseURL, SSLCommerz: c.SSLCommerzBaseURL, Bkash: c.BkashBaseURL,
	})
}
