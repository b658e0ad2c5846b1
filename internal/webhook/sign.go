package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// The headers of every delivery.
const (
	HeaderID        = "ISPGraph-Webhook-Id"
	HeaderTimestamp = "ISPGraph-Webhook-Timestamp"
	HeaderSignature = "ISPGraph-Signature"
)

// Sign computes the value of the ISPGraph-Signature header for body sent at
// t: "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>", with
// one v1 per secret (two while a rotated secret is still honoured).
func Sign(t time.Time, body []byte, secrets ...string) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	var b strings.Builder
	b.WriteString("t=")
	b.WriteString(ts)
	for _, s := range secrets {
		b.WriteString(",v1=")
		b.WriteString(hex.EncodeToString(mac(s, ts, body)))
	}
	return b.String()
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verification errors.
var (
	ErrNoSignature = errors.New("webhook: no valid signature")
	ErrTooOld      = errors.New("webhook: timestamp outside the tolerance")
)

// Verify checks an ISPGraph-Signature header against body with the
// partner's secret, and that its timestamp is within tolerance of now. It is
// what a partner runs (docs/payments.md); the tests' receivers use it too.
func Verify(header string, body []byte, secret string, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrNoSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrTooOld
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		got, err := hex.DecodeString(s)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrNoSignature
}
