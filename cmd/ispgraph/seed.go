package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/config"
	"github.com/ispgraph/ispgraph/internal/database"
	"github.com/ispgraph/ispgraph/internal/seed"
)

func runSeed(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var opts seed.BenchOptions
	var demo, reuse bool
	cfg, fs, err := loadConfig("seed", config.Database|config.Logging, args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.IntVar(&opts.Tenants, "tenants", 10, "number of tenants t1..tN")
		fs.IntVar(&opts.Subscribers, "subscribers", 10000, "subscribers per tenant")
		fs.IntVar(&opts.Months, "months", 12, "months of invoices and payments")
		fs.StringVar(&opts.Password, "password", "", "password of every admin@tN.example (required for a benchmark data set)")
		fs.Int64Var(&opts.Seed, "random-seed", 1, "seed of the random generator (same seed, same data)")
		fs.BoolVar(&reuse, "reuse", false, "if the data set exists, report it instead of failing")
		fs.BoolVar(&demo, "demo", false, "create the demo tenant instead of a benchmark data set")
		fs.Usage = func() {
			fmt.Fprint(stderr, "Usage: ispgraph seed [-demo] [-tenants N -subscribers M -months K -password P]\n\n"+
				"Fills the Postgres database at DATABASE_URL (migrating it first) with tenants t1..tN,\n"+
				"each with admin@tN.example, M subscribers and K months of invoices and payments,\n"+
				"written with COPY; or, with -demo, the demo tenant.\n\n")
			fs.PrintDefaults()
		}
	})
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if cfg.DatabaseURL == "" {
		return fmt.Errorf("DATABASE_URL is not set: seed writes to Postgres")
	}
	db, err := database.OpenPostgres(ctx, cfg.DatabaseURL, database.Options{MaxOpenConns: 4})
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx, func(format string, args ...any) { fmt.Fprintf(stdout, format+"\n", args...) }); err != nil {
		return err
	}
	if demo {
		res, err := seed.Demo(ctx, db.Client, demoOptions(cfg.DemoPassword))
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, res.String())
		return nil
	}
	if opts.Password == "" {
		return fmt.Errorf("-password is required: it becomes the password of every admin@tN.example")
	}
	opts.HashPassword = auth.HashPassword
	opts.Roles = roles()
	opts.Reuse = reuse
	// Through a transaction-pooling PgBouncer too (TestSeedThroughPgBouncer).
	pool, err := database.OpenPool(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	res, err := seed.Bench(ctx, pool, opts, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, res.String())
	return nil
}
