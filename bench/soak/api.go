package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// api is a GraphQL client for one staff login: the soak drives ispgraph only
// through its public API, as an ISP's staff and scripts do.
type api struct {
	base  string
	token string
	hc    *http.Client
	// relogin signs in again when a token stops working (see call).
	tenant, email, password string
	relogins                int
}

// gqlError is one GraphQL error with its extensions.code.
type gqlError struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

func (e gqlError) code() string {
	c, _ := e.Extensions["code"].(string)
	return c
}

// apiError is a GraphQL answer with errors.
type apiError struct {
	op     string
	errors []gqlError
}

func (e *apiError) Error() string {
	var parts []string
	for _, g := range e.errors {
		parts = append(parts, fmt.Sprintf("%s (%s)", g.Message, g.code()))
	}
	return e.op + ": " + strings.Join(parts, "; ")
}

// code is the first error's extensions.code.
func (e *apiError) code() string {
	if len(e.errors) == 0 {
		return ""
	}
	return e.errors[0].code()
}

func newAPI(base string) *api {
	return &api{base: base, hc: &http.Client{Timeout: 30 * time.Second}}
}

// login signs in as a tenant's staff member and keeps the token.
func (a *api) login(ctx context.Context, tenant, email, password string) error {
	a.tenant, a.email, a.password = tenant, email, password
	var out struct {
		Login struct{ Token string }
	}
	if err := a.raw(ctx, `mutation($t: String!, $e: String!, $p: String!) { login(input: {tenant: $t, email: $e, password: $p}) { token } }`,
		map[string]any{"t": tenant, "e": email, "p": password}, &out); err != nil {
		return err
	}
	a.token = out.Login.Token
	return nil
}

// call runs a query or mutation and decodes data into dst. A token that is
// refused (UNAUTHENTICATED) is renewed once by logging in again, and counted:
// a session should survive Redis losing its data.
func (a *api) call(ctx context.Context, query string, vars map[string]any, dst any) error {
	err := a.raw(ctx, query, vars, dst)
	if ae, ok := err.(*apiError); ok && ae.code() == "UNAUTHENTICATED" && a.email != "" {
		a.relogins++
		if lerr := a.login(ctx, a.tenant, a.email, a.password); lerr != nil {
			return fmt.Errorf("%w (and logging in again failed: %v)", err, lerr)
		}
		return a.raw(ctx, query, vars, dst)
	}
	return err
}

func (a *api) raw(ctx context.Context, query string, vars map[string]any, dst any) error {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/graphql", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", opName(query), err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s: read answer: %w", opName(query), err)
	}
	var out struct {
		Data   json.RawMessage `json:"data"`
		Errors []gqlError      `json:"errors"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("%s: HTTP %d, not JSON: %.200s", opName(query), resp.StatusCode, raw)
	}
	if len(out.Errors) > 0 {
		return &apiError{op: opName(query), errors: out.Errors}
	}
	if dst != nil {
		if err := json.Unmarshal(out.Data, dst); err != nil {
			return fmt.Errorf("%s: decode: %w", opName(query), err)
		}
	}
	return nil
}

// opName is the first field of a query, for messages.
func opName(q string) string {
	q = strings.TrimSpace(q)
	if i := strings.Index(q, "{"); i >= 0 {
		q = strings.TrimSpace(q[i+1:])
	}
	if i := strings.IndexAny(q, "({ \n\t"); i > 0 {
		q = q[:i]
	}
	return q
}
