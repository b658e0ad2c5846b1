package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	atlas "ariga.io/atlas/sql/migrate"
	"github.com/jackc/pgx/v5"

	"github.com/ispgraph/ispgraph/internal/config"
	"github.com/ispgraph/ispgraph/internal/database"
)

const migrateUsage = `Usage:
  ispgraph migrate [up]        apply pending migrations to DATABASE_URL
  ispgraph migrate status      list applied and pending migrations
  ispgraph migrate diff NAME   write migrations/<time>_NAME.sql for what ent/schema
                               has that migrations/ lacks (run from the repository root;
                               uses a scratch database on the server of -dev-url)
`

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	sub := "up"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	var devURL, dirPath string
	cfg, fs, err := loadConfig("migrate", config.Database|config.Logging, args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&devURL, "dev-url", firstNonEmpty(getenv("TEST_DATABASE_URL"), getenv(config.EnvDatabaseURL), "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
			"diff: a Postgres server where a scratch database may be created")
		fs.StringVar(&dirPath, "dir", "migrations", "diff: the migration directory")
		fs.Usage = func() { fmt.Fprint(stderr, migrateUsage); fs.PrintDefaults() }
	})
	if err != nil {
		return err
	}
	switch sub {
	case "diff":
		if fs.NArg() != 1 {
			fs.Usage()
			return errUsage
		}
		return migrateDiff(ctx, devURL, dirPath, fs.Arg(0), stdout)
	case "up", "status":
	default:
		fs.Usage()
		return errUsage
	}
	if cfg.DatabaseURL == "" {
		return fmt.Errorf("DATABASE_URL is not set: versioned migrations are for Postgres (the embedded default creates its SQLite schema itself)")
	}
	db, err := database.OpenPostgres(ctx, cfg.DatabaseURL, database.Options{MaxOpenConns: 2})
	if err != nil {
		return err
	}
	defer db.Close()
	if sub == "up" {
		applied, err := db.Migrate(ctx, func(format string, args ...any) { fmt.Fprintf(stdout, format+"\n", args...) })
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "applied %d migration(s)\n", len(applied))
	}
	rep, err := db.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	if sub == "status" {
		for _, n := range rep.AppliedNames {
			fmt.Fprintf(stdout, "applied  %s\n", n)
		}
		for _, n := range rep.PendingNames {
			fmt.Fprintf(stdout, "pending  %s\n", n)
		}
	}
	fmt.Fprintln(stdout, rep.String())
	return nil
}

// migrateDiff creates a scratch database next to devURL, lets Atlas replay the
// directory into it and writes the difference to ent/schema as a new file.
func migrateDiff(ctx context.Context, devURL, dirPath, name string, stdout io.Writer) error {
	u, err := url.Parse(devURL)
	if err != nil {
		return fmt.Errorf("-dev-url: %w", err)
	}
	conn, err := pgx.Connect(ctx, devURL)
	if err != nil {
		return fmt.Errorf("-dev-url: %w", err)
	}
	defer conn.Close(ctx)
	scratch := fmt.Sprintf("ispgraph_dev_%d", os.Getpid())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+scratch); err != nil {
		return fmt.Errorf("create scratch database: %w", err)
	}
	defer conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+scratch+" WITH (FORCE)")
	u.Path = "/" + scratch
	dir, err := atlas.NewLocalDir(dirPath)
	if err != nil {
		return err
	}
	changed, err := database.Diff(ctx, u.String(), dir, name)
	if err != nil {
		return err
	}
	if changed {
		fmt.Fprintf(stdout, "wrote a new migration into %s; review it and commit it with the schema change\n", dirPath)
	} else {
		fmt.Fprintln(stdout, "migrations already match ent/schema: nothing written")
	}
	return nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
