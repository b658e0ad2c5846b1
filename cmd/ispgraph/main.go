// Command ispgraph is the one binary of ispgraph: the GraphQL API server, the
// migration tool and the seeder. It only wires packages together.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	_ "github.com/ispgraph/ispgraph/ent/runtime" // registers ent policies and hooks
)

const usage = `ispgraph — the GraphQL backend an ISP runs its business on.

Usage:
  ispgraph serve    [flags]   run the API (embedded default when DATABASE_URL and REDIS_URL are unset)
  ispgraph worker   [flags]   run the job workers and the outbox relay (no API)
  ispgraph migrate  [up|status|diff NAME] [flags]
                              apply pending Postgres migrations, show their status,
                              or generate a new one from ent/schema (developers)
  ispgraph seed     [flags]   fill a Postgres database with demo or benchmark data
  ispgraph cache warm -tenant ID|SLUG | -all
                              load tenants' hot reads into the shared cache
  ispgraph healthcheck [-url URL]
                              exit 0 when a running server's /healthz answers 200
  ispgraph tenant   [create|list|suspend|activate] [flags]
                              platform operators' tenant management
  ispgraph schema [-o FILE]   print the GraphQL schema for client code generators (docs/api-evolution.md)
  ispgraph version            print the version and the commit it was built from
  ispgraph help [command]     show help

Configuration comes from flags and the environment (DATABASE_URL, REDIS_URL,
ISPGRAPH_SECRET_KEY, ISPGRAPH_ADDR, ISPGRAPH_DATA_DIR, ...); flags win.
Run "ispgraph <command> -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run dispatches a command line; it returns the process exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		err = runServe(ctx, rest, getenv, stdout, stderr)
	case "worker":
		err = runWorker(ctx, rest, getenv, stdout, stderr)
	case "migrate":
		err = runMigrate(ctx, rest, getenv, stdout, stderr)
	case "seed":
		err = runSeed(ctx, rest, getenv, stdout, stderr)
	case "cache":
		err = runCache(ctx, rest, getenv, stdout, stderr)
	case "healthcheck":
		err = runHealthcheck(ctx, rest, getenv, stdout, stderr)
	case "tenant":
		err = runTenant(ctx, rest, getenv, stdout, stderr)
	case "schema":
		err = runSchema(ctx, rest, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, versionString())
		return 0
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 {
			return run(ctx, []string{rest[0], "-h"}, getenv, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "ispgraph: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err == errHelp {
		return 0
	}
	if err == errUsage {
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "ispgraph %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
