package mikrotik

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/router"
	"github.com/ispgraph/ispgraph/internal/ratelimit"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/transaction"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// SecretOpener turns a stored secret (a router's or subscriber's password)
// into the plain text the router needs. ispgraph stores these secrets
// encrypted (AES-256-GCM, see ISPGRAPH_SECRET_KEY); the opener is where the
// decryption plugs in.
type SecretOpener func(stored string) (string, error)

// SecretSealer turns a plain secret into its stored form (the inverse of
// SecretOpener).
type SecretSealer func(plain string) (string, error)

// PlainSecrets is the identity opener/sealer: secrets stored as they are.
func PlainSecrets(s string) (string, error) { return s, nil }

// Service carries the dependencies of every router operation. Its methods are
// what job handlers and resolvers call; each takes the tenant explicitly (or
// from the viewer) and a context bounding its work.
type Service struct {
	Client *ent.Client
	Pool   *Pool
	// Open and Seal default to PlainSecrets.
	Open SecretOpener
	Seal SecretSealer
	// TLSConfig is used for routers with TLS (nil: the system roots, so a
	// private CA is added through SSL_CERT_FILE / SSL_CERT_DIR).
	TLSConfig *tls.Config
	Now       func() time.Time
	// OTPLimiter counts hotspot sign-up code requests per phone and per
	// address (an hour window); RequestOTP refuses without one.
	OTPLimiter *ratelimit.Limiter
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) open(v string) (string, error) {
	if s.Open == nil {
		return v, nil
	}
	return s.Open(v)
}

func (s *Service) seal(v string) (string, error) {
	if s.Seal == nil {
		return v, nil
	}
	return s.Seal(v)
}

// client returns the transaction in ctx (a mutation's) or the root client.
func (s *Service) client(ctx context.Context) *ent.Client {
	if c := ent.FromContext(ctx); c != nil {
		return c
	}
	return s.Client
}

// withTx runs fn in the transaction of ctx or a new one (transaction.Run).
func (s *Service) withTx(ctx context.Context, fn func(ctx context.Context, c *ent.Client) error) error {
	return transaction.Run(ctx, s.Client, fn)
}

// conn returns the pooled connection of a router.
func (s *Service) conn(r *ent.Router) (*Conn, error) {
	pw, err := s.open(r.Password)
	if err != nil {
		return nil, permanent("router %q: cannot read its stored password: %v", r.Name, err)
	}
	ep := Endpoint{Host: r.Host, Port: r.APIPort, TLS: r.UseTLS, Username: r.Username, Password: pw}
	if r.UseTLS && s.TLSConfig != nil {
		cfg := s.TLSConfig.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = r.Host
		}
		ep.TLSConfig = cfg
	}
	if s.Pool == nil {
		return nil, fmt.Errorf("mikrotik: service has no connection pool")
	}
	return s.Pool.Get(r.ID, ep), nil
}

// loadRouter reads a router of the tenant in ctx; a missing router is a
// permanent failure (the job has nothing to do).
func (s *Service) loadRouter(ctx context.Context, id int) (*ent.Router, error) {
	r, err := s.client(ctx).Router.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, permanent("router %d not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("mikrotik: load router %d: %w", id, err)
	}
	return r, nil
}

// recordReachability stores the outcome of talking to a router: online with
// the response time, or offline with the error. A !trap means the router
// answered, so it stays online while the error is recorded.
func (s *Service) recordReachability(ctx context.Context, r *ent.Router, elapsed time.Duration, opErr error, synced bool) {
	now := s.now()
	u := s.Client.Router.UpdateOneID(r.ID).SetLastCheckedAt(now)
	var refused *DeviceError
	if opErr == nil || errors.As(opErr, &refused) {
		u.SetLastSeenAt(now) // it answered, even if only to refuse
	}
	switch {
	case opErr == nil:
		u.SetAPIStatus(router.APIStatusONLINE).ClearLastError().SetResponseTimeMs(int(elapsed.Milliseconds()))
		if synced {
			u.SetLastSyncedAt(now)
		}
	case Retryable(opErr):
		u.SetAPIStatus(router.APIStatusOFFLINE).SetLastError(truncate(opErr.Error(), 500)).ClearResponseTimeMs()
	default:
		u.SetAPIStatus(router.APIStatusONLINE).SetLastError(truncate(opErr.Error(), 500))
	}
	// Written outside any caller transaction: the status must stick even when
	// the job (or mutation) that found it fails.
	_ = u.Exec(viewer.ForTenant(context.WithoutCancel(ctx), r.TenantID))
	if opErr == nil && r.APIStatus != router.APIStatusONLINE {
		// Back (or reached for the first time): whatever it missed while
		// unreachable converges now, not at the next retry's backoff.
		s.enqueueReconcile(ctx, r)
	}
	r.APIStatus = router.APIStatusONLINE
	if opErr != nil && Retryable(opErr) {
		r.APIStatus = router.APIStatusOFFLINE
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// HealthResult is what a health check learnt about a router.
type HealthResult struct {
	Identity  string
	Version   string
	BoardName string
	Uptime    time.Duration
	// CPULoad is in percent; FreeMemory and TotalMemory in bytes.
	CPULoad                 int
	FreeMemory, TotalMemory int64
	Elapsed                 time.Duration
}

// Check runs the health check of one router (/system/resource/print and
// /system/identity/print) and stores what it learnt on the router — CPU load,
// free and total memory, uptime, RouterOS version, model, identity — with its
// API status, response time, last error, check time and last-seen time. The
// error is the router's, with Retryable telling a caller whether to try
// again. An INACTIVE router is not dialled.
func (s *Service) Check(ctx context.Context, tenantID, routerID int) (*HealthResult, error) {
	ctx = viewer.ForTenant(ctx, tenantID)
	r, err := s.loadRouter(ctx, routerID)
	if err != nil {
		return nil, err
	}
	if r.Status == router.StatusINACTIVE {
		return nil, permanent("router %q is inactive: activate it to check it", r.Name)
	}
	c, err := s.conn(r)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	res, err := c.Run(ctx, "/system/resource/print")
	var id []Row
	if err == nil {
		id, err = c.Run(ctx, "/system/identity/print")
	}
	elapsed := time.Since(start)
	if err != nil {
		s.recordReachability(ctx, r, elapsed, err, false)
		return nil, err
	}
	out := &HealthResult{Elapsed: elapsed}
	if len(res) > 0 {
		out.Version, out.BoardName = res[0]["version"], res[0]["board-name"]
		out.Uptime = parseUptime(res[0]["uptime"])
		out.CPULoad = int(parseInt(res[0]["cpu-load"]))
		out.FreeMemory, out.TotalMemory = parseInt(res[0]["free-memory"]), parseInt(res[0]["total-memory"])
	}
	if len(id) > 0 {
		out.Identity = id[0]["name"]
	}
	// Stored before the reachability, which may queue a reconciliation.
	err = s.Client.Router.UpdateOneID(r.ID).SetCPULoad(out.CPULoad).SetFreeMemory(out.FreeMemory).
		SetTotalMemory(out.TotalMemory).SetUptimeSeconds(int64(out.Uptime / time.Second)).
		SetRouterosVersion(out.Version).SetBoardName(out.BoardName).SetIdentity(out.Identity).
		Exec(viewer.ForTenant(context.WithoutCancel(ctx), r.TenantID))
	s.recordReachability(ctx, r, elapsed, nil, false)
	if err != nil {
		return out, fmt.Errorf("mikrotik: store health of router %d: %w", r.ID, err)
	}
	return out, nil
}

// RouterRef names one router of one tenant.
type RouterRef struct {
	TenantID int
	RouterID int
}

// ActiveRouters lists the active routers of every tenant: what the
// every-minute sync and the health schedule walk through. It reads across
// tenants, so it bypasses tenant privacy on purpose.
func (s *Service) ActiveRouters(ctx context.Context) ([]RouterRef, error) {
	rs, err := s.Client.Router.Query().Where(router.StatusEQ(router.StatusACTIVE)).
		Select(router.FieldID, router.FieldTenantID).All(tenancy.Bypass(ctx))
	if err != nil {
		return nil, fmt.Errorf("mikrotik: list routers: %w", err)
	}
	out := make([]RouterRef, len(rs))
	for i, r := range rs {
		out[i] = RouterRef{TenantID: r.TenantID, RouterID: r.ID}
	}
	return out, nil
}
