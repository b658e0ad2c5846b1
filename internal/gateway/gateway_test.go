package gateway_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/gateway"
	"github.com/ispgraph/ispgraph/internal/secret"
)

var (
	oldKey = bytes.Repeat([]byte{1}, secret.KeySize)
	newKey = bytes.Repeat([]byte{2}, secret.KeySize)
)

func service(t *testing.T, key []byte, previous ...[]byte) *gateway.Service {
	t.Helper()
	box, err := secret.New(key, previous...)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gateway.New(box, nil, gateway.BaseURLs{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealOpenMask(t *testing.T) {
	s := service(t, oldKey)
	sealed, summary, err := s.Seal(map[string]any{"secret_key": "sk_test_abcdef123456", "port": 443.0, "sandbox": true, "pin": "12"})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("sk_test")) || !bytes.HasPrefix(sealed, []byte("v1:")) {
		t.Fatalf("sealed value is not the secret.Box format: %q", sealed)
	}
	want := map[string]string{"secret_key": "••••56", "port": "••••", "sandbox": "••••", "pin": "••••"}
	for k, v := range want {
		if summary[k] != v {
			t.Errorf("summary[%s] = %q, want %q", k, summary[k], v)
		}
	}
	cfg, err := s.Config(&ent.PaymentGateway{ConfigEncrypted: sealed})
	if err != nil {
		t.Fatal(err)
	}
	if cfg["secret_key"] != "sk_test_abcdef123456" || cfg["port"] != "443" || cfg["sandbox"] != "true" || len(cfg) != 4 {
		t.Fatalf("opened %v", cfg)
	}
	if _, _, err := s.Seal(map[string]any{"nested": map[string]any{"a": "b"}}); apperr.CodeOf(err) != apperr.BadUserInput {
		t.Fatalf("nested value: %v", err)
	}
	if _, _, err := s.Seal(map[string]any{"big": strings.Repeat("x", gateway.MaxConfigSize)}); apperr.CodeOf(err) != apperr.BadUserInput {
		t.Fatalf("oversized configuration: %v", err)
	}
}

// A configuration sealed before a key rotation opens while the old key is
// configured as previous, and not without it.
func TestConfigAcrossKeyRotation(t *testing.T) {
	sealed, _, err := service(t, oldKey).Seal(map[string]any{"store_id": "acme"})
	if err != nil {
		t.Fatal(err)
	}
	gw := &ent.PaymentGateway{ConfigEncrypted: sealed}
	cfg, err := service(t, newKey, oldKey).Config(gw)
	if err != nil || cfg["store_id"] != "acme" {
		t.Fatalf("during rotation: %v %v", cfg, err)
	}
	if _, err := service(t, newKey).Config(gw); !errors.Is(err, secret.ErrCorrupt) {
		t.Fatalf("without the previous key: %v", err)
	}
	if cfg, err := service(t, newKey).Config(&ent.PaymentGateway{}); err != nil || len(cfg) != 0 {
		t.Fatalf("no configuration: %v %v", cfg, err)
	}
}

func TestNewNeedsABox(t *testing.T) {
	if _, err := gateway.New(nil, nil, gateway.BaseURLs{}); err == nil {
		t.Fatal("a gateway service without a secret box was built")
	}
}
