package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// rawPost sends body as a GraphQL POST and returns the status and the
// decoded answer (the test fails when the answer is not JSON).
func rawPost(t *testing.T, base, token string, body []byte) (int, gqlResponse) {
	t.Helper()
	status, raw := sendGraphQL(t, base, token, body, nil)
	var out gqlResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("status %d, body %.300s: %v", status, raw, err)
	}
	return status, out
}

// TestClientErrorsAreClientErrors sends what a careless or hostile client
// sends and checks each gets its 4xx code, never INTERNAL, and that the
// server logs no panic and no SQL error.
func TestClientErrorsAreClientErrors(t *testing.T) {
	_, base, logs, _ := securityEnv(t, map[string]string{"ISPGRAPH_MAX_BODY_BYTES": "65536"})
	token := login(t, base, "t1", "admin@t1.example", "bench-pass-1")
	js := func(v any) []byte { b, _ := json.Marshal(v); return b }
	login := `mutation($t: String, $e: String!, $p: String!) { login(input: {tenant: $t, email: $e, password: $p}) { token } }`
	cases := []struct {
		name   string
		body   []byte
		status int
		code   string
	}{
		{"empty body", nil, 400, "GRAPHQL_PARSE_FAILED"},
		{"whitespace body", []byte("  \n"), 400, "GRAPHQL_PARSE_FAILED"},
		{"truncated JSON", []byte(`{"query": "{ packages { totalCount } }"`), 400, "GRAPHQL_PARSE_FAILED"},
		{"JSON null", []byte(`null`), 400, "GRAPHQL_PARSE_FAILED"},
		{"JSON string", []byte(`"{ packages { totalCount } }"`), 400, "GRAPHQL_PARSE_FAILED"},
		{"query not a string", []byte(`{"query": 42}`), 400, "GRAPHQL_PARSE_FAILED"},
		{"two objects", []byte(`{"query": "{ __typename }"} {"query": "{ __typename }"}`), 400, "GRAPHQL_PARSE_FAILED"},
		{"batched array", []byte(`[{"query": "{ __typename }"}, {"query": "{ __typename }"}]`), 400, "GRAPHQL_PARSE_FAILED"},
		{"syntax error", js(map[string]any{"query": "{ packages( "}), 400, "GRAPHQL_PARSE_FAILED"},
		{"no query", []byte(`{}`), 422, "GRAPHQL_VALIDATION_FAILED"},
		{"unknown field", js(map[string]any{"query": "{ noSuchField }"}), 422, "GRAPHQL_VALIDATION_FAILED"},
		{"wrong variable type", js(map[string]any{"query": login, "variables": map[string]any{"e": map[string]any{"a": 1}, "p": "x"}}), 422, "GRAPHQL_VALIDATION_FAILED"},
		{"invalid UTF-8", []byte("{\"query\": \"{ packages(where: {nameContains: \\\"\xff\xfe\\\"}) { totalCount } }\"}"), 400, "BAD_USER_INPUT"},
		{"NUL in a login variable", js(map[string]any{"query": login, "variables": map[string]any{"t": "t1", "e": "admin@t1.example\x00", "p": "x"}}), 400, "BAD_USER_INPUT"},
		{"NUL in a nested variable", js(map[string]any{"query": `mutation($in: RecordPaymentInput!) { recordPayment(input: $in) { id } }`,
			"variables": map[string]any{"in": map[string]any{"invoiceID": "1", "amount": "1.00", "method": "CASH", "idempotencyKey": "k\x00"}}}), 400, "BAD_USER_INPUT"},
		{"NUL escaped in a query literal", js(map[string]any{"query": `{ packages(where: {nameContains: "a\u0000b"}) { totalCount } }`}), 400, "BAD_USER_INPUT"},
		{"body over the limit", js(map[string]any{"query": "{ __typename }", "variables": map[string]any{"pad": strings.Repeat("x", 70000)}}), 413, "BAD_USER_INPUT"},
	}
	for _, c := range cases {
		status, r := rawPost(t, base, token, c.body)
		if status != c.status || r.code() != c.code {
			t.Errorf("%s: status %d code %q (%+v), want %d %s", c.name, status, r.code(), r.Errors, c.status, c.code)
		}
		for _, e := range r.Errors {
			if strings.Contains(e.Message, "packages(") || strings.Contains(e.Message, "xxxx") {
				t.Errorf("%s: the error echoes the body: %q", c.name, e.Message)
			}
		}
	}
	for _, bad := range []string{"panic", "level=ERROR", "SQLSTATE", "invalid byte sequence"} {
		if strings.Contains(logs.String(), bad) {
			t.Errorf("the server logged %q:\n%s", bad, grepLines(logs.String(), bad))
		}
	}
}

// TestConcurrentRefundsAndPayments refunds payments of one invoice while
// others are recorded against it: every answer is data or a CONFLICT a
// client can act on, never INTERNAL, and no deadlock reaches the log.
func TestConcurrentRefundsAndPayments(t *testing.T) {
	_, base, logs, _ := securityEnv(t, nil)
	token := login(t, base, "t1", "admin@t1.example", "bench-pass-1")
	inv, _ := openInvoice(t, base, token)
	const n = 8
	var paid []string
	for i := range n {
		var p paymentResult
		r := post(t, base, token, recordPayment, map[string]any{"inv": inv, "amount": "0.01", "key": fmt.Sprintf("seed-%d", i)})
		if len(r.Errors) > 0 || json.Unmarshal(r.Data, &p) != nil {
			t.Fatalf("recordPayment: %s %+v", r.Data, r.Errors)
		}
		paid = append(paid, p.RecordPayment.ID)
	}
	refund := `mutation($id: ID!) { refundPayment(id: $id, reason: "race") { status } }`
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			r := post(t, base, token, refund, map[string]any{"id": paid[i]})
			mu.Lock()
			codes["refund:"+r.code()]++
			mu.Unlock()
		}()
		go func() {
			defer wg.Done()
			r := post(t, base, token, recordPayment, map[string]any{"inv": inv, "amount": "0.01", "key": fmt.Sprintf("race-%d", i)})
			mu.Lock()
			codes["payment:"+r.code()]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.Logf("answers: %v", codes)
	if codes["refund:"] != n || codes["payment:"] != n {
		t.Errorf("want all %d refunds and %d payments to succeed, got %v", n, n, codes)
	}
	if strings.Contains(logs.String(), "deadlock") || strings.Contains(logs.String(), "internal error") {
		t.Errorf("the server logged a deadlock or an internal error:\n%s", grepLines(logs.String(), "deadlock"))
	}
}

// TestCheapRefusal sends documents built to cost the server work before
// they are refused: nested fragment spreads (2^24 copies when expanded),
// too many aliases, and persisted queries from anonymous callers or over
// the size bound, which run but are not stored.
func TestCheapRefusal(t *testing.T) {
	_, base, _, _ := securityEnv(t, nil)
	token := login(t, base, "t1", "admin@t1.example", "bench-pass-1")

	var b strings.Builder
	b.WriteString("{ routers(first: 1) { edges { node { ...F24 } } } }\n")
	b.WriteString("fragment F0 on Router { id name }\n")
	for i := 1; i <= 24; i++ {
		fmt.Fprintf(&b, "fragment F%d on Router { ...F%d ...F%d }\n", i, i-1, i-1)
	}
	status, r := rawPost(t, base, "", mustJSON(map[string]any{"query": b.String()}))
	if r.code() != "COMPLEXITY_LIMIT_EXCEEDED" || !strings.Contains(r.Errors[0].Message, fmt.Sprint(3+2<<24)) {
		t.Errorf("nested spreads (%d bytes): status %d %+v, want COMPLEXITY_LIMIT_EXCEEDED costing %d", b.Len(), status, r.Errors, 3+2<<24)
	}

	var aliases strings.Builder
	aliases.WriteString("{")
	for i := range 101 {
		fmt.Fprintf(&aliases, " a%d: __typename", i)
	}
	aliases.WriteString(" }")
	if status, r := rawPost(t, base, "", mustJSON(map[string]any{"query": aliases.String()})); status != 400 || r.code() != "BAD_USER_INPUT" {
		t.Errorf("101 aliases: status %d %+v, want 400 BAD_USER_INPUT", status, r.Errors)
	}

	apq := func(q string) map[string]any {
		sum := sha256.Sum256([]byte(q))
		return map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}
	}
	anon := `{ __typename }`
	if r := postAPQ(t, base, "", anon, apq(anon)); len(r.Errors) > 0 {
		t.Fatalf("anonymous query with a hash did not run: %s", fmtErrors(r))
	}
	if r := postAPQ(t, base, "", "", apq(anon)); r.code() != "PERSISTED_QUERY_NOT_FOUND" {
		t.Errorf("an anonymous caller's query was stored: %s %s", r.Data, fmtErrors(r))
	}
	big := `{ packages { totalCount } }` + strings.Repeat(" ", 20<<10)
	if r := postAPQ(t, base, token, big, apq(big)); len(r.Errors) > 0 {
		t.Fatalf("large query with a hash did not run: %s", fmtErrors(r))
	}
	if r := postAPQ(t, base, token, "", apq(big)); r.code() != "PERSISTED_QUERY_NOT_FOUND" {
		t.Errorf("a 20 KB query was stored: %s", fmtErrors(r))
	}
	small := `{ packages { totalCount } }`
	postAPQ(t, base, token, small, apq(small))
	if r := postAPQ(t, base, token, "", apq(small)); len(r.Errors) > 0 {
		t.Errorf("an authenticated caller's query was not stored: %s", fmtErrors(r))
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestQuietLeaks checks what an anonymous caller can learn or grow: metrics
// need the configured token and anonymous operation names add no series;
// introspection needs a login in production.
func TestQuietLeaks(t *testing.T) {
	_, base, _, _ := securityEnv(t, map[string]string{"ISPGRAPH_METRICS_TOKEN": "metrics-secret"})
	token := login(t, base, "t1", "admin@t1.example", "bench-pass-1")
	for i := range 30 {
		if r := post(t, base, "", fmt.Sprintf("query Probe%d { __typename }", i), nil); len(r.Errors) > 0 {
			t.Fatalf("anonymous probe: %s", fmtErrors(r))
		}
	}
	post(t, base, token, "query Known { __typename }", nil)
	if status, _ := httpGet(t, base+"/metrics", ""); status != http.StatusUnauthorized {
		t.Errorf("/metrics without the token: %d, want 401", status)
	}
	status, body := httpGet(t, base+"/metrics", "metrics-secret")
	if status != 200 || strings.Contains(body, `operation="Probe`) || !strings.Contains(body, `operation="other"`) || !strings.Contains(body, `operation="Known"`) {
		t.Errorf("/metrics: %d; want Known and other, no Probe*:\n%s", status, grepLines(body, "graphql_operation_duration_seconds_count"))
	}

	intro := `{ __schema { queryType { name } } }`
	if r := post(t, base, "", intro, nil); len(r.Errors) == 0 {
		t.Errorf("anonymous introspection answered: %s", r.Data)
	}
	if r := post(t, base, token, intro, nil); len(r.Errors) > 0 {
		t.Errorf("introspection after login: %s", fmtErrors(r))
	}
}

// TestRetriedMutationAuditedOnce: a mutation whose first attempt fails with a
// serialization failure is run again by the front door and succeeds; the
// audit log gets one row for it, not one per attempt. The failure is forced
// by a trigger that raises SQLSTATE 40001 the first time it fires (a sequence
// counts the attempts: sequences are not rolled back).
func TestRetriedMutationAuditedOnce(t *testing.T) {
	_, base, _, pool := securityEnv(t, nil)
	ctx := context.Background()
	token := login(t, base, "t1", "admin@t1.example", "bench-pass-1")
	var d struct {
		Packages struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	json.Unmarshal(mustData(t, base, token, `{ packages(first: 1) { edges { node { id } } } }`, nil), &d)
	if len(d.Packages.Edges) == 0 {
		t.Fatal("no package seeded")
	}
	for _, stmt := range []string{
		`CREATE SEQUENCE test_package_attempts`,
		`CREATE FUNCTION test_fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF nextval('test_package_attempts') = 1 THEN
				RAISE EXCEPTION 'forced serialization failure' USING ERRCODE = '40001';
			END IF;
			RETURN NEW;
		END $$`,
		`CREATE TRIGGER test_fail_once BEFORE UPDATE ON packages FOR EACH ROW EXECUTE FUNCTION test_fail_once()`,
	} {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	r := post(t, base, token, `mutation($id: ID!) { updatePackage(id: $id, input: {name: "Retried Once"}) { name } }`,
		map[string]any{"id": d.Packages.Edges[0].Node.ID})
	if len(r.Errors) > 0 || !strings.Contains(string(r.Data), "Retried Once") {
		t.Fatalf("updatePackage: %s %+v", r.Data, r.Errors)
	}
	var attempts, rows int
	pool.QueryRow(ctx, `SELECT last_value FROM test_package_attempts`).Scan(&attempts)
	pool.QueryRow(ctx, `SELECT count(*) FROM audit_logs WHERE action = 'mutation.updatePackage'`).Scan(&rows)
	if attempts != 2 || rows != 1 {
		t.Fatalf("%d attempts wrote %d audit rows; want 2 attempts, 1 row", attempts, rows)
	}
}
