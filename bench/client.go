package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// NewHTTPClient returns an HTTP client that keeps one idle connection per
// benchmark client, so the load measures the server and not TCP handshakes.
func NewHTTPClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        conns * 2,
			MaxIdleConnsPerHost: conns * 2,
			IdleConnTimeout:     90 * time.Second,
		},
	}
}

// GraphQL posts GraphQL documents to one server as one caller.
type GraphQL struct {
	HTTP *http.Client
	// URL is the endpoint, e.g. http://127.0.0.1:8080/graphql.
	URL string
	// Token is sent as a bearer token when set.
	Token string
}

// Response is a GraphQL response.
type Response struct {
	Data   json.RawMessage `json:"data"`
	Errors []GraphQLError  `json:"errors"`
}

// GraphQLError is one entry of a response's errors.
type GraphQLError struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

// Code returns the error's extensions.code.
func (e GraphQLError) Code() string {
	c, _ := e.Extensions["code"].(string)
	return c
}

// ResponseError is a response that carried GraphQL errors.
type ResponseError struct{ Errors []GraphQLError }

func (e *ResponseError) Error() string {
	first := e.Errors[0]
	return fmt.Sprintf("graphql: %s (%s; %d errors)", first.Message, first.Code(), len(e.Errors))
}

// Do posts query with vars and decodes the data into out (when not nil). A
// response with errors is returned as a *ResponseError.
func (c *GraphQL) Do(ctx context.Context, query string, vars map[string]any, out any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var r Response
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("graphql: status %d: %.200s", resp.StatusCode, raw)
	}
	if len(r.Errors) > 0 {
		return &ResponseError{Errors: r.Errors}
	}
	if out != nil {
		if err := json.Unmarshal(r.Data, out); err != nil {
			return fmt.Errorf("graphql: decode data: %w", err)
		}
	}
	return nil
}

// Login logs in as email in tenant and keeps the token for later requests.
func (c *GraphQL) Login(ctx context.Context, tenant, email, password string) error {
	var d struct{ Login struct{ Token string } }
	if err := c.Do(ctx, Login, map[string]any{"tenant": tenant, "email": email, "password": password}, &d); err != nil {
		return fmt.Errorf("login %s in %s: %w", email, tenant, err)
	}
	if d.Login.Token == "" {
		return errors.New("login returned no token")
	}
	c.Token = d.Login.Token
	return nil
}

// Page is one subscriber page of ActiveCursors.
type Page struct {
	HasNext bool
	End     string
	// Cursors and IDs are the cursor and global id of every subscriber, in order.
	Cursors, IDs []string
}

// ActivePage fetches one page of ActiveCursors.
func (c *GraphQL) ActivePage(ctx context.Context, first int, after string) (Page, error) {
	vars := map[string]any{"first": first}
	if after != "" {
		vars["after"] = after
	}
	var d struct {
		NetworkUsers struct {
			PageInfo struct {
				HasNextPage bool
				EndCursor   string
			}
			Edges []struct {
				Cursor string
				Node   struct{ ID string }
			}
		}
	}
	if err := c.Do(ctx, ActiveCursors, vars, &d); err != nil {
		return Page{}, err
	}
	p := Page{HasNext: d.NetworkUsers.PageInfo.HasNextPage, End: d.NetworkUsers.PageInfo.EndCursor}
	for _, e := range d.NetworkUsers.Edges {
		p.Cursors = append(p.Cursors, e.Cursor)
		p.IDs = append(p.IDs, e.Node.ID)
	}
	return p, nil
}

// ExportPage is the page info of one InvoiceExport response.
type ExportPage struct {
	HasNext bool
	End     string
	Rows    int
}

// Export fetches one page of InvoiceExport.
func (c *GraphQL) Export(ctx context.Context, since time.Time, after string) (ExportPage, error) {
	vars := map[string]any{"first": ExportPageSize, "since": since.UTC().Format(time.RFC3339)}
	if after != "" {
		vars["after"] = after
	}
	var d struct {
		Invoices struct {
			PageInfo struct {
				HasNextPage bool
				EndCursor   string
			}
			Edges []json.RawMessage
		}
	}
	if err := c.Do(ctx, InvoiceExport, vars, &d); err != nil {
		return ExportPage{}, err
	}
	return ExportPage{HasNext: d.Invoices.PageInfo.HasNextPage, End: d.Invoices.PageInfo.EndCursor, Rows: len(d.Invoices.Edges)}, nil
}
