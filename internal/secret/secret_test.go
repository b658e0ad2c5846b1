package secret

import (
	"bytes"
	"strings"
	"testing"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func TestSealOpen(t *testing.T) {
	b, err := New(key(1))
	if err != nil {
		t.Fatal(err)
	}
	s1, err := b.Seal("router-pass-123")
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := b.Seal("router-pass-123")
	if s1 == s2 {
		t.Error("two seals of one value are equal: nonce reused")
	}
	if strings.Contains(s1, "router-pass") || !strings.HasPrefix(s1, "v1:") {
		t.Errorf("sealed value %q", s1)
	}
	got, err := b.Open(s1)
	if err != nil || got != "router-pass-123" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if e, _ := b.Seal(""); e != "" {
		t.Errorf("Seal(\"\") = %q", e)
	}
	// altered ciphertext and a foreign key fail
	bad := s1[:len(s1)-2] + "AA"
	if _, err := b.Open(bad); err != ErrCorrupt {
		t.Errorf("altered: %v", err)
	}
	other, _ := New(key(2))
	if _, err := other.Open(s1); err != ErrCorrupt {
		t.Errorf("other key: %v", err)
	}
}

func TestRotation(t *testing.T) {
	old, _ := New(key(1))
	sealed, _ := old.Seal("gateway-secret")
	rotated, err := New(key(2), key(1))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rotated.Open(sealed); err != nil || got != "gateway-secret" {
		t.Fatalf("open old value after rotation: %q %v", got, err)
	}
	resealed, err := rotated.Reseal(sealed)
	if err != nil {
		t.Fatal(err)
	}
	newOnly, _ := New(key(2))
	if got, err := newOnly.Open(resealed); err != nil || got != "gateway-secret" {
		t.Fatalf("resealed value under new key: %q %v", got, err)
	}
}

func TestMask(t *testing.T) {
	for in, want := range map[string]string{"": "", "abc": "••••", "sk_live_12345678": "••••78"} {
		if got := Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
}
