package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/tenant"
	"github.com/ispgraph/ispgraph/internal/cache"
	"github.com/ispgraph/ispgraph/internal/config"
	"github.com/ispgraph/ispgraph/internal/observability"
	"github.com/ispgraph/ispgraph/internal/progress"
	"github.com/ispgraph/ispgraph/internal/tenancy"
)

const cacheUsage = `Usage: ispgraph cache warm -tenant ID|SLUG | -all

Loads tenants' hot reads into the shared cache (Redis at REDIS_URL): tenant
data, role permissions, the first page of packages and of payment gateways.
Never needed for correctness; it spares the first readers after a deploy.
`

func runCache(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "warm" {
		fmt.Fprint(stderr, cacheUsage)
		return errUsage
	}
	var tenantArg string
	var all bool
	cfg, fs, err := loadConfig("cache warm", config.Database|config.Redis|config.Logging|config.Jobs|config.Cache, args[1:], getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&tenantArg, "tenant", "", "the tenant to warm: its id or slug")
		fs.BoolVar(&all, "all", false, "warm every active tenant")
		fs.Usage = func() { fmt.Fprint(stderr, cacheUsage+"\n"); fs.PrintDefaults() }
	})
	if err != nil {
		return err
	}
	if fs.NArg() > 0 || (tenantArg == "") == !all {
		fs.Usage()
		return errUsage
	}
	if cfg.Embedded() {
		return errors.New("DATABASE_URL and REDIS_URL are not set: the embedded default's cache lives inside its serve process, which fills it as it serves")
	}
	m := &Main{Config: cfg, Stdout: stdout, Logger: observability.NewLogger(stderr, cfg.LogFormat, cfg.LogLevel)}
	defer m.Close()
	if err := m.Open(ctx); err != nil {
		return err
	}
	bctx := tenancy.Bypass(ctx) // choosing tenants is not done for one tenant
	var ids []int
	switch {
	case all:
		ids, err = m.DB.Client.Tenant.Query().Where(tenant.StatusEQ(tenant.StatusACTIVE)).Order(tenant.ByID()).IDs(bctx)
	default:
		q := m.DB.Client.Tenant.Query().Where(tenant.SlugEQ(tenantArg))
		if id, perr := strconv.Atoi(tenantArg); perr == nil {
			q = m.DB.Client.Tenant.Query().Where(tenant.ID(id))
		}
		var id int
		if id, err = q.OnlyID(bctx); err == nil {
			ids = []int{id}
		} else if ent.IsNotFound(err) {
			return fmt.Errorf("no tenant with id or slug %q", tenantArg)
		}
	}
	if err != nil {
		return fmt.Errorf("list tenants: %w", err)
	}
	warmers := m.Warmers
	bar := progress.New(stderr, "warming cache", int64(len(ids)))
	entries := 0
	for _, id := range ids {
		n, err := cache.Warm(ctx, id, warmers...)
		entries += n
		if err != nil {
			bar.Finish()
			return err
		}
		bar.Add(1)
	}
	bar.Finish()
	if m.Cache.Degraded() {
		return fmt.Errorf("redis did not answer: warmed only this command's memory, which ends with it")
	}
	fmt.Fprintf(stdout, "warmed %d cache entries for %d tenants\n", entries, len(ids))
	return nil
}
