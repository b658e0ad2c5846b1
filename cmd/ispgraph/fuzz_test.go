package main

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"
)

// FuzzGraphQL posts random bodies, and random queries, variables and
// operation names wrapped in a well-formed body, to the real server as an
// anonymous caller. Whatever arrives, the answer is JSON with a client error
// or data: never a 5xx, never INTERNAL, no panic in the log, and no tenant's
// data changes (the audit log, which records failed logins, aside).
// make test runs its seeds; fuzz with: go test -run=^$ -fuzz=FuzzGraphQL -fuzztime=60s ./cmd/ispgraph/
func FuzzGraphQL(f *testing.F) {
	f.Add(`{ packages { totalCount } }`, `{}`, ``, []byte(`{"query": "{ __typename }"}`))
	f.Add(`mutation($t: String, $e: String!, $p: String!) { login(input: {tenant: $t, email: $e, password: $p}) { token } }`,
		`{"t": "t1", "e": "admin@t1.example\u0000", "p": "x"}`, ``, []byte(`[{"query": "{ __typename }"}]`))
	f.Add(`mutation($t: String!, $u: String!, $p: String!) { customerLogin(input: {tenant: $t, username: $u, password: $p}) { token } }`,
		`{"t": "T1 ", "u": "\ud800", "p": ""}`, `X`, []byte("\xff\xfe{"))
	f.Add(`{ node(id: "AAAA") { id } nodes(ids: ["1", "-1"]) { id } }`, `null`, ``, []byte(``))
	f.Add(`query Q { ...F } fragment F on Query { ...F }`, `[]`, `Q`, []byte(`{"query": 1, "variables": "x"}`))
	f.Add(`{ routers(first: -1, after: "%%%") { totalCount } }`, `{"a": {"b": [1, "\u0000"]}}`, ``, []byte(`{"query": "{ a: __typename b: __typename }", "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "00"}}}`))

	_, base, logs, pool := securityEnv(f, nil)
	skip := func(d map[string]string) map[string]string {
		d = maps.Clone(d)
		delete(d, "audit_logs")
		return d
	}
	before := map[string]map[string]string{"t1": skip(tenantDigest(f, pool, "t1")), "t2": skip(tenantDigest(f, pool, "t2"))}

	f.Fuzz(func(t *testing.T, query, variables, operationName string, raw []byte) {
		body := map[string]any{"query": query, "operationName": operationName}
		if json.Valid([]byte(variables)) {
			body["variables"] = json.RawMessage(variables)
		} else {
			body["variables"] = variables
		}
		wrapped, err := json.Marshal(body)
		if err != nil {
			t.Skip()
		}
		for _, b := range [][]byte{raw, wrapped} {
			req, _ := http.NewRequest(http.MethodPost, base+"/graphql", bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var r gqlResponse
			if resp.StatusCode >= 500 || json.Unmarshal(out, &r) != nil {
				t.Fatalf("body %q: status %d, answer %.300s", b, resp.StatusCode, out)
			}
			for _, e := range r.Errors {
				if e.Extensions["code"] == "INTERNAL" || e.Extensions["code"] == nil {
					t.Fatalf("body %q: error without a client code: %+v", b, r.Errors)
				}
			}
		}
		if l := logs.String(); strings.Contains(l, "panic") || strings.Contains(l, "level=ERROR") {
			t.Fatalf("the server logged an error:\n%s", grepLines(l, "level=ERROR"))
		}
		for slug, d := range before {
			if after := skip(tenantDigest(t, pool, slug)); !maps.Equal(after, d) {
				t.Fatalf("tenant %s's data changed", slug)
			}
		}
	})
}
