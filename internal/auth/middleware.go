package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/audit"
	"github.com/ispgraph/ispgraph/internal/authz"
	"github.com/ispgraph/ispgraph/internal/ratelimit"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// RequestInfo is what the login mutations need from the HTTP request, which
// resolvers do not see: the Host header and the client's address.
type RequestInfo struct {
	Host    string
	Address string
}

type requestInfoKey struct{}

type authErrorKey struct{}

// RequestInfoFrom returns the request details Middleware stored in ctx.
func RequestInfoFrom(ctx context.Context) RequestInfo {
	ri, _ := ctx.Value(requestInfoKey{}).(RequestInfo)
	return ri
}

// AuthError returns why the request's bearer token was refused, or nil when
// the request carried no token or a good one.
func AuthError(ctx context.Context) error {
	err, _ := ctx.Value(authErrorKey{}).(error)
	return err
}

// Middleware authenticates the bearer token of each request. A good token puts
// its viewer in the request's context; a bad one does not reject the request
// but records why in the context (AuthError), so the GraphQL layer can answer
// UNAUTHENTICATED with that reason while login still works; no Authorization
// header leaves the request without a viewer. It also records RequestInfo.
//
// Address is taken from r.RemoteAddr: behind a proxy, put a middleware that
// sets RemoteAddr from a trusted forwarding header in front of this one.
func (s *Service) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), requestInfoKey{}, RequestInfo{Host: r.Host, Address: remoteIP(r.RemoteAddr)})
		if h := r.Header.Get("Authorization"); h != "" {
			hit := &apiHit{}
			v, err := s.authenticateHeader(context.WithValue(ctx, apiHitKey{}, hit), h, r.Header.Get(OperatorTenantHeader))
			if err != nil {
				if isAppErr(err) {
					s.logger().DebugContext(ctx, "bearer token refused", slog.Any("error", err))
				} else {
					s.logger().ErrorContext(ctx, "authenticate", slog.Any("error", err))
				}
				ctx = context.WithValue(ctx, authErrorKey{}, err)
			} else {
				ctx = viewer.NewContext(ctx, v)
				if v.Kind == viewer.Operator {
					// Every request an operator makes inside a tenant is audited.
					s.audit(ctx, audit.Entry{Action: "operator.access", Outcome: "ok"})
				}
				if !s.allowAPICall(ctx, w, v, hit) {
					return
				}
			}
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// apiHit is the API rate-limit hit that authenticateCached sent in the same
// round trip to Redis as the stamp of a credential it knew (Middleware puts
// an empty one in the context): key and limit it was counted on, and how to
// read its result. wait is nil when no hit was sent.
type apiHit struct {
	key   string
	limit int
	wait  func() (ratelimit.Result, error)
}

type apiHitKey struct{}

// queueAPIHit queues, in pipe, the API rate-limit hit of a request by v when
// the request comes through Middleware (nothing otherwise).
func (s *Service) queueAPIHit(ctx context.Context, pipe redis.Pipeliner, v *viewer.Viewer) {
	hit, _ := ctx.Value(apiHitKey{}).(*apiHit)
	if hit == nil || s.Limiter == nil {
		return
	}
	hit.key, hit.limit = s.apiLimit(v)
	hit.wait = s.Limiter.Queue(ctx, pipe, hit.key, hit.limit)
}

// pipelinesAPIHits reports whether a known credential's stamp and its API
// rate-limit hit can share one round trip to Redis.
func (s *Service) pipelinesAPIHits(ctx context.Context) bool {
	hit, _ := ctx.Value(apiHitKey{}).(*apiHit)
	return hit != nil && s.Limiter != nil && s.Cache.SharesRedis(s.Limiter.Redis)
}

// apiLimit returns the rate-limit key and per-minute limit of v's requests.
func (s *Service) apiLimit(v *viewer.Viewer) (string, int) {
	// A tenant's or key's own limit is capped; the server's is the operator's.
	limit := min(v.RateLimit, MaxAPILimit)
	if limit <= 0 {
		limit = s.APILimit
	}
	if limit <= 0 {
		limit = DefaultAPILimit
	}
	switch {
	case v.APIKeyID > 0:
		return "api:key:" + strconv.Itoa(v.APIKeyID), limit
	case v.TokenID > 0:
		return "api:token:" + strconv.Itoa(v.TokenID), limit
	default:
		return "api:" + v.Kind.String() + ":" + v.Label, limit
	}
}

// allowAPICall counts a request against the credential's per-minute limit and
// sets the RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset headers
// (IETF httpapi draft; seconds) on the response. Past the limit it answers 429
// with Retry-After (the seconds until the next call is allowed, rounded up)
// and a RATE_LIMITED GraphQL error; the refused call is not counted. With
// Redis down it lets the request through (fails open) and logs that it did.
// A hit already sent with the credential's stamp (hit) is used when it was
// counted on the same key and limit (a credential re-verified as another
// limit is counted again, on its new one).
func (s *Service) allowAPICall(ctx context.Context, w http.ResponseWriter, v *viewer.Viewer, hit *apiHit) bool {
	if s.Limiter == nil {
		return true
	}
	key, limit := s.apiLimit(v)
	var (
		res ratelimit.Result
		err error
	)
	if hit != nil && hit.wait != nil && hit.key == key && hit.limit == limit {
		res, err = hit.wait()
	} else {
		res, err = s.Limiter.Hit(ctx, key, limit)
	}
	if err != nil {
		s.logger().WarnContext(ctx, "API rate limiter unavailable: request let through (fails open)", slog.Any("error", err))
		return true
	}
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(res.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(res.Remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(ratelimit.Seconds(res.ResetAfter)))
	if res.Allowed {
		return true
	}
	s.logger().WarnContext(ctx, "API rate limited", slog.String("credential", key), slog.Int("limit", limit))
	retry := max(ratelimit.Seconds(res.RetryAfter), 1)
	h.Set("Content-Type", "application/json")
	h.Set("Retry-After", strconv.Itoa(retry))
	w.WriteHeader(http.StatusTooManyRequests)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{
		"message":    fmt.Sprintf("rate limit of %d requests per minute reached: retry in %d seconds", limit, retry),
		"extensions": map[string]any{"code": string(apperr.RateLimited)},
	}}})
	return false
}

// authenticateHeader authenticates an Authorization header value.
func (s *Service) authenticateHeader(ctx context.Context, h, operatorTenant string) (*viewer.Viewer, error) {
	scheme, token, _ := strings.Cut(strings.TrimSpace(h), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return nil, apperr.E(apperr.Unauthenticated,
			"unsupported Authorization header: send \"Authorization: Bearer <token>\" with the token login returned")
	}
	token = strings.TrimSpace(token)
	if strings.HasPrefix(token, OperatorKeyPrefix) {
		return s.authenticateOperator(ctx, token, operatorTenant)
	}
	return s.Authenticate(ctx, token)
}

// remoteIP returns the host part of a RemoteAddr.
func remoteIP(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// Require returns the viewer in ctx. Without one it returns the reason the
// request's token was refused or, when it carried none, UNAUTHENTICATED asking
// the caller to log in.
func Require(ctx context.Context) (*viewer.Viewer, error) {
	if v := viewer.FromContext(ctx); v != nil {
		return v, nil
	}
	if err := AuthError(ctx); err != nil {
		return nil, err
	}
	return nil, apperr.E(apperr.Unauthenticated,
		"you are not logged in: log in and send \"Authorization: Bearer <token>\"")
}

// RequirePermission returns the viewer in ctx when it holds perm, and an
// UNAUTHENTICATED or FORBIDDEN error saying what is missing otherwise.
func RequirePermission(ctx context.Context, perm string) (*viewer.Viewer, error) {
	v, err := Require(ctx)
	if err != nil {
		return nil, err
	}
	if err := authz.Check(v, perm); err != nil {
		return nil, err
	}
	return v, nil
}

// AuthenticateConnection checks the credential a long-lived connection (a
// graphql-ws subscription socket) presents once, at connection_init: the
// Authorization value ("Bearer <token>") and, for platform operators, the
// tenant. It returns ctx with the viewer, or an error whose message may be
// shown to the client.
func (s *Service) AuthenticateConnection(ctx context.Context, authorization, operatorTenant string) (context.Context, error) {
	if authorization == "" {
		return ctx, apperr.E(apperr.Unauthenticated,
			"send {\"Authorization\": \"Bearer <token>\"} in the connection_init payload")
	}
	v, err := s.authenticateHeader(ctx, authorization, operatorTenant)
	if err != nil {
		if !isAppErr(err) {
			s.logger().ErrorContext(ctx, "authenticate connection", slog.Any("error", err))
			return ctx, apperr.E(apperr.Internal, "internal error while checking the credential")
		}
		return ctx, err
	}
	ctx = viewer.NewContext(ctx, v)
	if v.Kind == viewer.Operator {
		s.audit(ctx, audit.Entry{Action: "operator.access", Outcome: "ok"})
	}
	return ctx, nil
}
