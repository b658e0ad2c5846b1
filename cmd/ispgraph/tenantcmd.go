package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/ispgraph/ispgraph/ent/tenant"
	"github.com/ispgraph/ispgraph/internal/config"
	"github.com/ispgraph/ispgraph/internal/notify"
	"github.com/ispgraph/ispgraph/internal/observability"
	"github.com/ispgraph/ispgraph/internal/tenants"
)

const tenantUsage = `Usage:
  ispgraph tenant create -name NAME -slug SLUG -domain HOST [-subdomain LABEL]
                         [-timezone ZONE] [-currency CODE]
                         -admin-name NAME -admin-email EMAIL   (password from ISPGRAPH_ADMIN_PASSWORD)
  ispgraph tenant list
  ispgraph tenant suspend SLUG
  ispgraph tenant activate SLUG

Platform operators' tenant management on the production database
(DATABASE_URL, REDIS_URL). Each change is audited in the tenant's audit log as
"command line". Over the API the same is createTenant, tenants, updateTenant
and suspendTenant with an operator key.
`

// envAdminPassword carries the first admin's password to "tenant create", so
// it never appears in a process list or shell history.
const envAdminPassword = "ISPGRAPH_ADMIN_PASSWORD"

// smtpMailer is the mail relay the configuration names.
func smtpMailer(c config.Config) *notify.Mailer {
	return &notify.Mailer{Config: notify.SMTPConfig{Host: c.SMTPHost, Port: c.SMTPPort, Username: c.SMTPUsername,
		Password: c.SMTPPassword, From: c.SMTPFrom, StartTLS: c.SMTPStartTLS}}
}

func runTenant(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, tenantUsage)
		return errUsage
	}
	sub := args[0]
	var in tenants.CreateInput
	var subdomain string
	extra := func(fs *flag.FlagSet) {
		fs.Usage = func() { fmt.Fprint(stderr, tenantUsage) }
		if sub != "create" {
			return
		}
		fs.StringVar(&in.Name, "name", "", "the ISP's name")
		fs.StringVar(&in.Slug, "slug", "", "short name used at login")
		fs.StringVar(&in.Domain, "domain", "", "host name the tenant is served at")
		fs.StringVar(&subdomain, "subdomain", "", "label under the platform's domain")
		fs.StringVar(&in.Timezone, "timezone", "UTC", "IANA time zone")
		fs.StringVar(&in.Currency, "currency", "USD", "ISO 4217 currency code")
		fs.StringVar(&in.AdminName, "admin-name", "", "the first admin's name")
		fs.StringVar(&in.AdminEmail, "admin-email", "", "the first admin's e-mail (login)")
	}
	switch sub {
	case "create", "list", "suspend", "activate":
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, tenantUsage)
		return nil
	default:
		fmt.Fprintf(stderr, "unknown tenant command %q\n\n%s", sub, tenantUsage)
		return errUsage
	}
	cfg, fs, err := loadConfig("tenant "+sub, config.Database|config.Redis|config.Logging|config.Jobs|config.Cache|config.Effects, args[1:], getenv, stderr, extra)
	if err != nil {
		return err
	}
	if cfg.Embedded() {
		return errors.New("DATABASE_URL and REDIS_URL are not set: manage the embedded default's tenants over the API (createTenant with an operator key)")
	}
	m := &Main{Config: cfg, Stdout: stdout, Logger: observability.NewLogger(stderr, cfg.LogFormat, cfg.LogLevel)}
	defer m.Close()
	if err := m.Open(ctx); err != nil {
		return err
	}
	ts := m.Tenants
	switch sub {
	case "create":
		if fs.NArg() > 0 {
			fs.Usage()
			return errUsage
		}
		if subdomain != "" {
			in.Subdomain = &subdomain
		}
		in.AdminPassword = getenv(envAdminPassword)
		if in.AdminPassword == "" {
			return fmt.Errorf("set %s to the first admin's password", envAdminPassword)
		}
		t, admin, err := ts.Create(ctx, in)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created tenant %q (id %d, %s, %s); admin %s can log in with tenant %q\n",
			t.Slug, t.ID, t.Timezone, t.Currency, admin.Email, t.Slug)
		return nil
	case "list":
		list, err := ts.List(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tSLUG\tNAME\tDOMAIN\tSTATUS\tCURRENCY\tTIMEZONE")
		for _, t := range list {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Slug, t.Name, t.Domain, t.Status, t.Currency, t.Timezone)
		}
		return w.Flush()
	default: // suspend, activate
		if fs.NArg() != 1 {
			fs.Usage()
			return errUsage
		}
		t, err := ts.BySlug(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		if sub == "suspend" {
			t, err = ts.Suspend(ctx, t.ID)
		} else {
			st := tenant.StatusACTIVE
			t, err = ts.Update(ctx, t.ID, tenants.Update{Status: &st})
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "tenant %q is %s\n", t.Slug, t.Status)
		return nil
	}
}
