package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/privacy"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/gid"
	"github.com/ispgraph/ispgraph/internal/money"
	"github.com/ispgraph/ispgraph/internal/observability"
	"github.com/ispgraph/ispgraph/internal/transaction"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// Unique-violation messages: Postgres names the index, SQLite the columns.
var (
	pgConstraint = regexp.MustCompile(`constraint "([a-z0-9_]+)"`)
	sqliteUnique = regexp.MustCompile(`UNIQUE constraint failed: ([a-z0-9_., ]+)`)
)

// classify turns any error a resolver returned into a code and a message that
// is safe to show: never SQL text, a stack or a secret.
func classify(ctx context.Context, err error) (code apperr.Code, msg string, internal bool) {
	var ae *apperr.Error
	var ge *gqlerror.Error
	var ve *ent.ValidationError
	var ce *ent.ConstraintError
	var nfe *ent.NotFoundError
	switch {
	case errors.As(err, &ae):
		return ae.Code, ae.Message, ae.Code == apperr.Internal
	case errors.As(err, &nfe), ent.IsNotSingular(err):
		return apperr.NotFound, gid.ErrUnknown.Message, false
	case errors.As(err, &ve):
		return apperr.BadUserInput, validationMessage(ve), false
	case errors.As(err, &ce):
		return apperr.Conflict, conflictMessage(ce), false
	case errors.Is(err, money.ErrInvalid):
		return apperr.BadUserInput, err.Error(), false
	case errors.Is(err, privacy.Deny):
		if !viewer.FromContext(ctx).HasTenant() {
			return apperr.Unauthenticated, "log in first: send Authorization: Bearer <token>", false
		}
		return apperr.Forbidden, "you are not allowed to do this", false
	case isArgumentError(ctx, err):
		return apperr.BadUserInput, argumentMessage(err), false
	case transaction.Retryable(err):
		// A deadlock or serialization failure: the front door retries the
		// mutation (see retryState); when the retries run out, say so.
		markRetry(ctx)
		return apperr.Conflict, "the change collided with another change to the same records: send it again", false
	case errors.Is(err, context.DeadlineExceeded):
		return apperr.Internal, "the request took too long and was stopped", true
	case errors.As(err, &ge) && ge.Err == nil:
		// Produced by gqlgen itself: parse and validation errors, complexity.
		switch c, _ := ge.Extensions["code"].(string); c {
		case "":
			return apperr.BadUserInput, ge.Message, false
		case string(apperr.NotFound):
			// entgql's node-not-found message echoes the decoded integer id.
			return apperr.NotFound, gid.ErrUnknown.Message, false
		default:
			return apperr.Code(c), ge.Message, false
		}
	}
	return apperr.Internal, "", true
}

func conflictMessage(ce *ent.ConstraintError) string {
	msg := ce.Error()
	var cols []string
	if m := sqliteUnique.FindStringSubmatch(msg); m != nil {
		// SQLite: UNIQUE constraint failed: packages.tenant_id, packages.name
		for _, c := range strings.Split(m[1], ",") {
			c = strings.TrimSpace(c)
			if _, col, ok := strings.Cut(c, "."); ok {
				c = col
			}
			if c != "tenant_id" {
				cols = append(cols, c)
			}
		}
	} else if m := pgConstraint.FindStringSubmatch(msg); m != nil {
		name := m[1]
		if strings.HasSuffix(name, "_fkey") || strings.Contains(msg, "foreign key") {
			return "this refers to a record that does not exist or is still in use"
		}
		// ent names indexes <type>_<col>_<col> (or <table>_<col>_key); drop the
		// type and the tenant, which every index leads with.
		name = strings.TrimSuffix(name, "_key")
		if _, rest, ok := strings.Cut(name, "_tenant_id_"); ok {
			name = rest
		} else if _, rest, ok := strings.Cut(name, "_"); ok {
			name = rest
		}
		cols = []string{name}
	}
	if len(cols) == 0 {
		return "this conflicts with an existing record"
	}
	return fmt.Sprintf("a record with the same %s already exists", strings.ReplaceAll(strings.Join(cols, ", "), "_", " "))
}

// Presenter is the one place errors become GraphQL errors with extensions.code.
// Internal errors are logged with the request id and shown as "internal error".
func Presenter(logger *slog.Logger, m *observability.Metrics) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		out := graphql.DefaultErrorPresenter(ctx, err)
		code, msg, internal := classify(ctx, err)
		reqID := observability.RequestIDFrom(ctx)
		if internal {
			logger.ErrorContext(ctx, "internal error", "err", err, "request_id", reqID, "path", out.Path.String())
			msg = "internal error"
			if reqID != "" {
				msg = "internal error (request id " + reqID + ")"
			}
		}
		out.Message = msg
		out.Err = nil
		if out.Extensions == nil {
			out.Extensions = map[string]any{}
		}
		out.Extensions["code"] = string(code)
		if m != nil {
			m.GraphQLErrors.WithLabelValues(string(code)).Inc()
		}
		return out
	}
}

// validationMessage names the field in API terms: "invalid name: value is ...".
func validationMessage(ve *ent.ValidationError) string {
	if inner := errors.Unwrap(ve); inner != nil {
		return fmt.Sprintf("invalid %s: %v", strings.ReplaceAll(ve.Name, "_", " "), inner)
	}
	return strings.TrimPrefix(ve.Error(), "ent: ")
}

// isArgumentError reports whether err arose while gqlgen decoded a field's
// arguments (a malformed cursor, id or amount): its path then runs past the
// field into the argument.
func isArgumentError(ctx context.Context, err error) bool {
	var ge *gqlerror.Error
	if !errors.As(err, &ge) || ge.Err == nil {
		return false
	}
	fc := graphql.GetFieldContext(ctx)
	if fc == nil {
		return false
	}
	return len(ge.Path) > len(fc.Path())
}

func argumentMessage(err error) string {
	var ge *gqlerror.Error
	errors.As(err, &ge)
	inner := ge.Err
	var ae *apperr.Error
	if errors.As(inner, &ae) {
		return ae.Message
	}
	var arg []string
	for _, p := range ge.Path {
		if k, ok := p.(ast.PathName); ok {
			arg = append(arg, string(k))
		}
	}
	return fmt.Sprintf("invalid value for %s: %v", strings.Join(arg, "."), inner)
}
