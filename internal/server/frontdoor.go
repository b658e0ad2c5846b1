package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/transaction"
)

// DefaultMaxBodyBytes is the largest request body read when Options gives none.
const DefaultMaxBodyBytes = 1 << 20

// postTransport is the GraphQL-over-HTTP POST transport. It replaces gqlgen's
// to refuse, before any parsing, what is not one GraphQL request: a body over
// MaxBody bytes (413), an empty or malformed body or a JSON array of
// operations (400 GRAPHQL_PARSE_FAILED), and a body that is not UTF-8 (400
// BAD_USER_INPUT); none of them is echoed back. A mutation that failed on a
// deadlock or serialization failure is run again, up to
// transaction.MaxTxAttempts times in all.
type postTransport struct {
	MaxBody int64
}

var _ graphql.Transport = postTransport{}

// Supports reports a POST with a JSON body.
func (postTransport) Supports(r *http.Request) bool {
	if r.Header.Get("Upgrade") != "" || r.Method != http.MethodPost {
		return false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// Do serves one POST request.
func (t postTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	w.Header().Set("Content-Type", "application/json")
	ctx := r.Context()
	start := graphql.Now()
	params, status, gerr := t.read(w, r)
	if gerr != nil {
		w.WriteHeader(status)
		// An empty operation context: the response interceptors (the
		// transaction among them) expect one on every path.
		writeResponse(w, exec.DispatchError(graphql.WithOperationContext(ctx, &graphql.OperationContext{}), gqlerror.List{gerr}))
		return
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}

	for attempt := 1; ; attempt++ {
		rs := &retryState{last: attempt >= transaction.MaxTxAttempts}
		actx := context.WithValue(ctx, retryKey{}, rs)
		p := *params
		rc, opErr := exec.CreateOperationContext(actx, &p)
		if opErr != nil {
			w.WriteHeader(statusFor(opErr))
			writeResponse(w, exec.DispatchError(graphql.WithOperationContext(actx, rc), opErr))
			return
		}
		responses, rctx := exec.DispatchOperation(actx, rc)
		resp := responses(rctx)
		if willRetry(rctx) {
			continue
		}
		writeResponse(w, resp)
		return
	}
}

// read reads and decodes the body, or says why it is refused.
func (t postTransport) read(w http.ResponseWriter, r *http.Request) (*graphql.RawParams, int, *gqlerror.Error) {
	limit := t.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, http.StatusRequestEntityTooLarge, codedError(apperr.BadUserInput,
			"the request body is over %d bytes: send a smaller query (or a persisted query's hash) and fewer variables", limit)
	case err != nil:
		return nil, http.StatusBadRequest, codedError(apperr.ParseFailed, "the request body could not be read")
	}
	body = bytes.TrimSpace(body)
	switch {
	case len(body) == 0:
		return nil, http.StatusBadRequest, codedError(apperr.ParseFailed,
			`the request body is empty: send a JSON object {"query": "...", "variables": {...}}`)
	case !utf8.Valid(body):
		return nil, http.StatusBadRequest, codedError(apperr.BadUserInput, "the request body is not valid UTF-8")
	case body[0] == '[':
		return nil, http.StatusBadRequest, codedError(apperr.ParseFailed,
			"batched operations (a JSON array) are not supported: send one operation per request")
	case body[0] != '{':
		return nil, http.StatusBadRequest, codedError(apperr.ParseFailed,
			`the request body is not a JSON object: send {"query": "...", "variables": {...}}`)
	}
	params := &graphql.RawParams{}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(params); err != nil {
		return nil, http.StatusBadRequest, codedError(apperr.ParseFailed,
			"the request body is not a GraphQL request: %s", jsonProblem(err))
	}
	if dec.More() {
		return nil, http.StatusBadRequest, codedError(apperr.ParseFailed,
			"the request body holds more than one JSON value: send one operation per request")
	}
	return params, 0, nil
}

// jsonProblem describes a decoding error without quoting the body.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("%q must not be a JSON %s", te.Field, te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends early"
	}
	return "malformed JSON"
}

// codedError is a gqlerror with extensions.code set, for errors raised
// before any resolver runs.
func codedError(code apperr.Code, format string, args ...any) *gqlerror.Error {
	err := gqlerror.Errorf(format, args...)
	errcode.Set(err, string(code))
	return err
}

// statusFor is the HTTP status of an operation refused before it ran: 400
// when the document does not parse, 422 when it does not validate, 200 for a
// limit (its error says what to change).
func statusFor(errs gqlerror.List) int {
	for _, e := range errs {
		switch e.Extensions["code"] {
		case errcode.ParseFailed, string(apperr.BadUserInput):
			return http.StatusBadRequest
		case errcode.ValidationFailed:
			return http.StatusUnprocessableEntity
		}
	}
	return http.StatusOK
}

// writeResponse writes resp as encoding/json would, but writes the data as
// gqlgen produced it: json.Marshal re-validates and compacts a RawMessage,
// a pass over every byte of the answer that showed in the benchmark's
// profiles (docs/benchmarks.md), and the data is not copied into another
// buffer either (a partner page's is about 60 KB). The members around it
// are small and marshalled as usual.
func writeResponse(w io.Writer, resp *graphql.Response) {
	if resp == nil {
		resp = &graphql.Response{}
	}
	if len(resp.Data) <= 1024 {
		// A small answer in one write: one buffer, one chunk.
		b, err := encodeResponse(resp)
		if err != nil {
			b = internalErrorBody
		}
		_, _ = w.Write(b)
		return
	}
	head, tail, err := responseParts(resp)
	if err != nil {
		_, _ = w.Write(internalErrorBody)
		return
	}
	if _, err := w.Write(head); err != nil {
		return
	}
	if _, err := w.Write(resp.Data); err != nil {
		return
	}
	_, _ = w.Write(tail)
}

// internalErrorBody is what writeResponse writes when resp cannot be encoded.
var internalErrorBody = []byte(`{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}]}`)

// encodeResponse is the whole body writeResponse writes for resp.
func encodeResponse(resp *graphql.Response) ([]byte, error) {
	head, tail, err := responseParts(resp)
	if err != nil {
		return nil, err
	}
	if len(resp.Data) == 0 {
		head = append(head, "null"...)
	} else {
		head = append(head, resp.Data...)
	}
	return append(head, tail...), nil
}

// responseParts renders resp's members in encoding/json's order, with its
// omitempty rules: head is everything before the data's value, tail
// everything after it.
func responseParts(resp *graphql.Response) (head, tail []byte, err error) {
	out := make([]byte, 0, 64)
	member := func(name string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		out = append(out, ',', '"')
		out = append(out, name...)
		out = append(out, '"', ':')
		out = append(out, b...)
		return nil
	}
	if len(resp.Errors) > 0 {
		b, err := json.Marshal(resp.Errors)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, `{"errors":`...)
		out = append(out, b...)
		out = append(out, `,"data":`...)
	} else {
		out = append(out, `{"data":`...)
	}
	head, out = out, make([]byte, 0, 16)
	if resp.Label != "" {
		err = errors.Join(err, member("label", resp.Label))
	}
	if len(resp.Path) > 0 {
		err = errors.Join(err, member("path", resp.Path))
	}
	if resp.HasNext != nil {
		err = errors.Join(err, member("hasNext", resp.HasNext))
	}
	if len(resp.Extensions) > 0 {
		err = errors.Join(err, member("extensions", resp.Extensions))
	}
	if err != nil {
		return nil, nil, err
	}
	return head, append(out, '}'), nil
}

// retryState is carried in one attempt's context; the presenter marks it when
// a resolver failed on a deadlock or serialization failure.
type retryState struct {
	retry atomic.Bool
	last  bool // no attempt follows this one
}

type retryKey struct{}

// willRetry reports whether the front door will run the operation of ctx
// again: a mutation that hit a deadlock or serialization failure, with
// attempts left. What that attempt did is rolled back and not audited.
func willRetry(ctx context.Context) bool {
	rs, ok := ctx.Value(retryKey{}).(*retryState)
	if !ok || rs.last || !rs.retry.Load() || !graphql.HasOperationContext(ctx) {
		return false
	}
	op := graphql.GetOperationContext(ctx).Operation
	return op != nil && op.Operation == ast.Mutation
}

// markRetry asks the front door to run the operation again.
func markRetry(ctx context.Context) {
	if rs, ok := ctx.Value(retryKey{}).(*retryState); ok {
		rs.retry.Store(true)
	}
}

// csvCell makes a value safe to open in a spreadsheet: a cell starting with
// =, +, -, @, a tab or a carriage return is read as a formula, so it gets a
// leading apostrophe (OWASP's advice for CSV injection). A plain negative
// number stays a number.
func csvCell(s string) string {
	if s == "" || !strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return s
	}
	if s[0] == '-' {
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return s
		}
	}
	return "'" + s
}
