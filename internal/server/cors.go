package server

import (
	"net/http"
	"slices"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// corsAllowedHeaders are the request headers a browser client may send.
const corsAllowedHeaders = "Authorization, Content-Type, X-Request-Id, X-Ispgraph-Tenant"

// corsExposedHeaders are the response headers a browser client may read: the
// rate-limit state, so a dashboard can slow down before it is refused.
const corsExposedHeaders = "Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset"

// CORS lets single-page applications served from the origins listed call
// next from the browser. A request from any other origin gets no CORS
// headers, so the browser withholds the answer; none listed (the default)
// allows no other origin. Credentials travel in the Authorization header,
// never in cookies, so Access-Control-Allow-Credentials is not sent.
func CORS(origins []string, next http.Handler) http.Handler {
	if len(origins) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !slices.Contains(origins, origin) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Expose-Headers", corsExposedHeaders)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", corsAllowedHeaders)
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ParseOrigins reads a comma-separated list of origins such as
// "https://portal.acme.example, http://localhost:5173".
func ParseOrigins(s string) []string {
	var out []string
	for _, o := range strings.Split(s, ",") {
		if o = strings.TrimSuffix(strings.TrimSpace(o), "/"); o != "" {
			out = append(out, o)
		}
	}
	return out
}

// mutationOverGET answers a mutation sent with GET as the GraphQL-over-HTTP
// specification says: 405 Method Not Allowed with "Allow: POST". A GET
// request must not change anything, and intermediaries may repeat it.
func mutationOverGET(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && isMutation(r.URL.Query().Get("query"), r.URL.Query().Get("operationName")) {
			w.Header().Set("Allow", "POST")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusMethodNotAllowed)
			_, _ = w.Write([]byte(`{"errors":[{"message":"mutations must be sent with POST","extensions":{"code":"BAD_USER_INPUT"}}]}`))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isMutation reports whether the operation a GET request would run is a
// mutation. A query that does not parse is left to the GraphQL handler.
func isMutation(query, operationName string) bool {
	if query == "" {
		return false
	}
	doc, err := parser.ParseQuery(&ast.Source{Input: query})
	if err != nil {
		return false
	}
	for _, op := range doc.Operations {
		if (operationName == "" || op.Name == operationName) && op.Operation == ast.Mutation {
			return true
		}
	}
	return false
}
