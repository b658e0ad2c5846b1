// Package gateway owns payment gateways: a gateway's configuration sealed at
// rest with secret.Box (and the masked summary the API shows instead of it),
// the clients of each provider's HTTP API (Stripe, SSLCommerz, bKash) with
// configurable base URLs, and asking a provider whether a payment really
// happened. The API stores configuration through it and the payment job
// verifies through it, so both read one format.
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/paymentgateway"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/secret"
)

// Config is a gateway's opened configuration: credentials and options by
// name (e.g. Stripe "secret_key", SSLCommerz "store_id"/"store_password").
type Config map[string]string

// MaxConfigSize bounds a gateway configuration's encoded JSON.
const MaxConfigSize = 16 << 10

// BaseURLs are the provider API roots; production uses the providers' own,
// tests point them at httptest servers.
type BaseURLs struct {
	Stripe     string
	SSLCommerz string
	BKash      string // tokenized checkout, version included (…/v1.2.0-beta)
}

// Service seals and opens gateway configuration and talks to providers.
type Service struct {
	box       *secret.Box
	providers map[paymentgateway.Provider]Verifier
}

// New returns the gateway service. box is required: without a secret key no
// configuration can be stored or read. hc is the HTTP client of every
// provider call (nil: a client with a 30 s timeout).
func New(box *secret.Box, hc *http.Client, urls BaseURLs) (*Service, error) {
	if box == nil {
		return nil, errors.New("gateway: a secret box is required to seal and open gateway configuration")
	}
	if hc == nil {
		hc = &http.Client{Timeout: defaultTimeout}
	}
	return &Service{box: box, providers: map[paymentgateway.Provider]Verifier{
		paymentgateway.ProviderSTRIPE:     &Stripe{BaseURL: urls.Stripe, HTTP: hc},
		paymentgateway.ProviderSSLCOMMERZ: &SSLCommerz{BaseURL: urls.SSLCommerz, HTTP: hc},
		paymentgateway.ProviderBKASH:      &BKash{BaseURL: urls.BKash, HTTP: hc},
	}}, nil
}

// Seal validates a configuration given through the API and returns it sealed
// for PaymentGateway.config_encrypted and masked for config_summary. Values
// are stored as strings (numbers and booleans in their JSON spelling).
func (s *Service) Seal(conf map[string]any) (sealed []byte, summary map[string]string, err error) {
	cfg := make(Config, len(conf))
	for k, v := range conf {
		switch v := v.(type) {
		case string:
			cfg[k] = v
		case nil:
			cfg[k] = ""
		case map[string]any, []any:
			return nil, nil, apperr.E(apperr.BadUserInput, "configuration value %q must be a string, number or boolean", k)
		default:
			b, _ := json.Marshal(v)
			cfg[k] = string(b)
		}
	}
	raw, err := json.Marshal(cfg)
	if err != nil || len(raw) > MaxConfigSize {
		return nil, nil, apperr.E(apperr.BadUserInput, "configuration must be a JSON object of at most %d bytes", MaxConfigSize)
	}
	if sealed, err = s.box.SealBytes(raw); err != nil {
		return nil, nil, fmt.Errorf("gateway: seal configuration: %w", err)
	}
	return sealed, Summary(cfg), nil
}

// Summary masks every value of a configuration (secret.Mask), the only view
// of it the API gives.
func Summary(cfg Config) map[string]string {
	out := make(map[string]string, len(cfg))
	for k, v := range cfg {
		out[k] = secret.Mask(v)
	}
	return out
}

// SortedSummary is a gateway's stored summary as a map for the API, nil when
// no configuration is set.
func SortedSummary(gw *ent.PaymentGateway) map[string]any {
	if len(gw.ConfigSummary) == 0 {
		return nil
	}
	keys := make([]string, 0, len(gw.ConfigSummary))
	for k := range gw.ConfigSummary {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(map[string]any, len(keys))
	for _, k := range keys {
		out[k] = gw.ConfigSummary[k]
	}
	return out
}

// Config opens a gateway's configuration (the current secret key, then the
// previous ones during a rotation). A gateway without configuration has an
// empty one.
func (s *Service) Config(gw *ent.PaymentGateway) (Config, error) {
	if len(gw.ConfigEncrypted) == 0 {
		return Config{}, nil
	}
	raw, err := s.box.OpenBytes(gw.ConfigEncrypted)
	if err != nil {
		return nil, fmt.Errorf("gateway %d: configuration: %w", gw.ID, err)
	}
	// Values were written as strings by Seal; anything else is read in its
	// JSON spelling, so older rows with numbers still open.
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("gateway %d: configuration is not a JSON object: %w", gw.ID, err)
	}
	cfg := make(Config, len(m))
	for k, v := range m {
		switch v := v.(type) {
		case string:
			cfg[k] = v
		case nil:
		default:
			b, _ := json.Marshal(v)
			cfg[k] = string(b)
		}
	}
	return cfg, nil
}

// Verify asks the gateway's provider about the payment with transaction id
// txid. Errors are temporary (retry); a definitive failure is a Result with
// Succeeded false.
func (s *Service) Verify(ctx context.Context, gw *ent.PaymentGateway, txid string) (Result, error) {
	v := s.providers[gw.Provider]
	if v == nil {
		return Result{}, fmt.Errorf("gateway: provider %s has no verification client", gw.Provider)
	}
	cfg, err := s.Config(gw)
	if err != nil {
		return Result{}, err
	}
	return v.Verify(ctx, cfg, txid)
}

// CheckResult applies the rules a provider's success must meet before a
// payment through gw completes: the money arrived in the currency of gw's
// tenant, and at least the payment's amount. A success that breaks one is
// returned as a failure with the reason; a failure is returned as it is.
// The webhooks, the confirmation and the payment job all decide through it.
func (s *Service) CheckResult(ctx context.Context, gw *ent.PaymentGateway, p *ent.Payment, res Result) (Result, error) {
	if !res.Succeeded {
		return res, nil
	}
	cur, err := tenantCurrency(ctx, gw)
	if err != nil {
		return Result{}, err
	}
	if res.Currency != "" && !strings.EqualFold(res.Currency, cur) {
		return Result{Reason: fmt.Sprintf("the provider received %s %s, the payment is in %s", res.Amount.In(res.Currency), strings.ToUpper(res.Currency), cur)}, nil
	}
	if res.Amount < p.Amount {
		return Result{Reason: fmt.Sprintf("the provider received %s, the payment is for %s", res.Amount.In(cur), p.Amount.In(cur))}, nil
	}
	return res, nil
}

// tenantCurrency is the ISO 4217 code of the currency of gw's tenant, the
// unit of every amount of its payments.
func tenantCurrency(ctx context.Context, gw *ent.PaymentGateway) (string, error) {
	t, err := gw.QueryTenant().Only(ctx)
	if err != nil {
		return "", fmt.Errorf("gateway %d: tenant currency: %w", gw.ID, err)
	}
	return strings.ToUpper(t.Currency), nil
}
