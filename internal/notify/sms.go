package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// SMSProvider is a tenant's generic HTTP SMS gateway, configured in the
// tenant's settings under "sms":
//
//	{"sms": {"url": "https://sms.example/send", "token": "...", "sender": "MYISP"}}
//
// Each message is one POST of {"to", "message", "sender"} as JSON with
// "Authorization: Bearer <token>"; a 2xx answer accepts it and may carry
// {"id": "..."} as the provider's reference.
type SMSProvider struct {
	URL    string
	Token  string
	Sender string
}

// ErrNoSMSProvider is returned when a tenant has not configured SMS.
var ErrNoSMSProvider = errors.New(`notify: the tenant has no SMS provider: set settings.sms.url (and token, sender)`)

// SMSProviderFromSettings reads the provider from a tenant's settings.
func SMSProviderFromSettings(settings map[string]any) (SMSProvider, error) {
	raw, ok := settings["sms"].(map[string]any)
	if !ok {
		return SMSProvider{}, ErrNoSMSProvider
	}
	str := func(k string) string { s, _ := raw[k].(string); return s }
	p := SMSProvider{URL: str("url"), Token: str("token"), Sender: str("sender")}
	if p.URL == "" {
		return SMSProvider{}, ErrNoSMSProvider
	}
	return p, nil
}

// SMSError is a refusal by the provider.
type SMSError struct {
	Status    int
	Permanent bool // a 4xx other than 429: resending will not help
	Body      string
}

func (e *SMSError) Error() string {
	return fmt.Sprintf("notify: sms provider answered %d: %s", e.Status, e.Body)
}

// Send sends one message and returns the provider's reference.
func (p SMSProvider) Send(ctx context.Context, hc *http.Client, to, message string) (string, error) {
	body, _ := json.Marshal(map[string]string{"to": to, "message": message, "sender": p.Sender})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("notify: sms request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if p.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("notify: sms provider: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return "", &SMSError{
			Status:    resp.StatusCode,
			Permanent: resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusTooManyRequests,
			Body:      string(bytes.TrimSpace(raw)),
		}
	}
	var out struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(raw, &out)
	return out.ID, nil
}
