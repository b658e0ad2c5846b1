package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ispgraph/ispgraph/internal/apperr"
)

func TestCheckURLStrict(t *testing.T) {
	p := Policy{}
	ctx := context.Background()
	for _, raw := range []string{
		"", "not a url", "/relative/path", "ftp://partner.example/x",
		"http://203.0.113.7/hook", // plain http
		"https://127.0.0.1/hook", "https://[::1]/hook", "https://10.1.2.3/hook", "https://192.168.0.10:8443/hook",
		"https://172.16.0.1/hook", "https://169.254.169.254/latest/meta-data", "https://100.64.0.1/hook",
		"https://0.0.0.0/hook", "https://[fe80::1]/hook", "https://[::ffff:127.0.0.1]/hook",
		"https://localhost/hook", "https://api.localhost/hook", "https://user:pw@203.0.113.7/hook",
	} {
		_, err := p.CheckURL(ctx, raw)
		if apperr.CodeOf(err) != apperr.BadUserInput {
			t.Errorf("CheckURL(%q) = %v, want BAD_USER_INPUT", raw, err)
		}
	}
	if u, err := p.CheckURL(ctx, " https://203.0.113.7:8443/ispgraph/hooks#frag "); err != nil || u != "https://203.0.113.7:8443/ispgraph/hooks" {
		t.Errorf("a public https URL: %q, %v", u, err)
	}
}

func TestCheckURLAllowPrivate(t *testing.T) {
	p := Policy{AllowPrivate: true}
	for _, raw := range []string{"http://127.0.0.1:8080/hook", "https://10.1.2.3/hook", "http://localhost/x"} {
		if _, err := p.CheckURL(context.Background(), raw); err != nil {
			t.Errorf("CheckURL(%q) with private allowed: %v", raw, err)
		}
	}
	for _, raw := range []string{"ftp://127.0.0.1/x", "127.0.0.1:80", "http://u:p@127.0.0.1/"} {
		if _, err := p.CheckURL(context.Background(), raw); apperr.CodeOf(err) != apperr.BadUserInput {
			t.Errorf("CheckURL(%q) = %v, want BAD_USER_INPUT", raw, err)
		}
	}
}

// TestDialTimeRefusal: a URL that passed registration but reaches a
// loopback address when dialled is refused by the client itself, before any
// byte is sent; redirects are never followed.
func TestDialTimeRefusal(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	strict := Policy{}.HTTPClient(2 * time.Second)
	_, err := strict.Post(srv.URL+"/hook", "application/json", strings.NewReader("{}"))
	if err == nil || !strings.Contains(err.Error(), errAddressNotAllowed.Error()) {
		t.Fatalf("strict client reached %s: %v", srv.URL, err)
	}
	if hits != 0 {
		t.Fatalf("the receiver was hit %d times", hits)
	}
	open := Policy{AllowPrivate: true}.HTTPClient(2 * time.Second)
	resp, err := open.Post(srv.URL+"/redirect", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || hits != 1 {
		t.Fatalf("redirect: status %d after %d requests, want 302 after 1", resp.StatusCode, hits)
	}
}

func TestSignVerify(t *testing.T) {
	body := []byte(`{"id":"evt_1"}`)
	now := time.Unix(1_780_000_000, 0)
	h := Sign(now, body, "whsec_new", "whsec_old")
	if !strings.HasPrefix(h, "t=1780000000,v1=") || strings.Count(h, "v1=") != 2 {
		t.Fatalf("header %q", h)
	}
	for _, s := range []string{"whsec_new", "whsec_old"} {
		if err := Verify(h, body, s, now.Add(time.Minute), 5*time.Minute); err != nil {
			t.Errorf("verify with %s: %v", s, err)
		}
	}
	if err := Verify(h, body, "whsec_other", now, 5*time.Minute); err != ErrNoSignature {
		t.Errorf("another secret: %v", err)
	}
	if err := Verify(h, []byte(`{"id":"evt_2"}`), "whsec_new", now, 5*time.Minute); err != ErrNoSignature {
		t.Errorf("another body: %v", err)
	}
	if err := Verify(h, body, "whsec_new", now.Add(10*time.Minute), 5*time.Minute); err != ErrTooOld {
		t.Errorf("old timestamp: %v", err)
	}
}

func TestBackoff(t *testing.T) {
	s := &Service{RetryBase: time.Minute}
	var total time.Duration
	for n := 1; n < 8; n++ {
		total += s.Backoff(n)
	}
	if s.Backoff(1) != time.Minute || s.Backoff(2) != 3*time.Minute || s.Backoff(20) != MaxBackoff {
		t.Fatalf("backoff: %v %v %v", s.Backoff(1), s.Backoff(2), s.Backoff(20))
	}
	if total < 12*time.Hour || total > 30*time.Hour {
		t.Fatalf("8 attempts span %v, want about a day", total)
	}
}
