package server

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

func TestCORS(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	h := CORS(ParseOrigins(" https://portal.acme.example/ , http://localhost:5173"), next)

	req := httptest.NewRequest(http.MethodOptions, "/graphql", nil)
	req.Header.Set("Origin", "https://portal.acme.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNoContent || rec.Header().Get("Access-Control-Allow-Origin") != "https://portal.acme.example" ||
		rec.Header().Get("Access-Control-Allow-Headers") != corsAllowedHeaders {
		t.Fatalf("preflight from an allowed origin: %d %v", rec.Code, rec.Header())
	}

	req = httptest.NewRequest(http.MethodPost, "/graphql", nil)
	req.Header.Set("Origin", "http://localhost:5173")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Header().Get("Access-Control-Allow-Origin") != "http://localhost:5173" ||
		rec.Header().Get("Access-Control-Expose-Headers") != corsExposedHeaders {
		t.Fatalf("request from an allowed origin: %v", rec.Header())
	}

	req = httptest.NewRequest(http.MethodPost, "/graphql", nil)
	req.Header.Set("Origin", "https://evil.example")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("another origin got CORS headers: %v", rec.Header())
	}

	// None configured: no origin is allowed.
	rec = httptest.NewRecorder()
	req.Header.Set("Origin", "https://portal.acme.example")
	CORS(nil, next).ServeHTTP(rec, req)
	if rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("default allowed an origin: %v", rec.Header())
	}
}

func TestMutationOverGET(t *testing.T) {
	called := 0
	h := mutationOverGET(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called++ }))
	for _, c := range []struct {
		query, op string
		want      int
	}{
		{"mutation { logout }", "", http.StatusMethodNotAllowed},
		{"query A { viewer { kind } } mutation B { logout }", "B", http.StatusMethodNotAllowed},
		{"query A { viewer { kind } } mutation B { logout }", "A", http.StatusOK},
		{"{ viewer { kind } }", "", http.StatusOK},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/graphql?query="+url.QueryEscape(c.query)+"&operationName="+c.op, nil))
		if rec.Code != c.want || (c.want == http.StatusMethodNotAllowed && rec.Header().Get("Allow") != "POST") {
			t.Errorf("%q %s: %d %v", c.query, c.op, rec.Code, rec.Header())
		}
	}
	if called != 2 {
		t.Fatalf("next called %d times, want 2", called)
	}
}
