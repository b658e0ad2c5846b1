package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// FuzzGraphQL posts random bodies, and random queries, variables and
// operation names wrapped in a well-formed body, to the real server as an
// anonymous caller. Whatever arrives, the answer is JSON with a client error
// or data: never a 5xx, never INTERNAL, no panic in the log, and no tenant's
// data changes (the audit log, which records failed logins, aside).
// make test runs its seeds; .ci/run fuzzes it for 30 s (docs/security.md).
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
	digest := tenantsDigest(f, pool)
	before := digest(f)
	logOffset := 0
	fuzzClient := &http.Client{Timeout: 20 * time.Second}

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
			resp, err := fuzzClient.Do(req)
			if err != nil {
				var dump bytes.Buffer
				pprof.Lookup("goroutine").WriteTo(&dump, 1)
				t.Fatalf("body %q: %v\n%s", b, err, dump.String())
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
		var l string
		l, logOffset = logs.Since(logOffset)
		if strings.Contains(l, "panic") || strings.Contains(l, "level=ERROR") {
			t.Fatalf("the server logged an error:\n%s", grepLines(l, "level=ERROR"))
		}
		if after := digest(t); !maps.Equal(after, before) {
			t.Fatal("a tenant's data changed")
		}
	})
}

// tenantsDigest returns a function that digests every tenant-owned table of
// t1 and t2 (the audit log, which records failed logins, aside) in one
// statement: run after every input, it must cost one round trip, not one per
// table (the table list is read once).
func tenantsDigest(tb testing.TB, pool *pgxpool.Pool) func(testing.TB) map[string]string {
	tb.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT table_name FROM information_schema.columns
		WHERE column_name = 'tenant_id' AND table_schema = current_schema() AND table_name <> 'audit_logs' ORDER BY table_name`)
	if err != nil {
		tb.Fatal(err)
	}
	var parts []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		parts = append(parts, fmt.Sprintf(`SELECT %s, coalesce(md5(string_agg(x::text, '|' ORDER BY x.id)), '') FROM %q x
			WHERE tenant_id IN (SELECT id FROM tenants WHERE slug IN ('t1', 't2'))`, pgQuote(n), n))
	}
	rows.Close()
	parts = append(parts, `SELECT 'tenants', md5(string_agg(x::text, '|' ORDER BY x.id)) FROM tenants x WHERE slug IN ('t1', 't2')`)
	query := strings.Join(parts, " UNION ALL ")
	return func(tb testing.TB) map[string]string {
		tb.Helper()
		rows, err := pool.Query(ctx, query)
		if err != nil {
			tb.Fatal(err)
		}
		defer rows.Close()
		out := map[string]string{}
		for rows.Next() {
			var table, sum string
			if err := rows.Scan(&table, &sum); err != nil {
				tb.Fatal(err)
			}
			out[table] = sum
		}
		if err := rows.Err(); err != nil {
			tb.Fatal(err)
		}
		return out
	}
}

// pgQuote quotes s as an SQL string literal.
func pgQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
