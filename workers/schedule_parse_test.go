package workers

import (
	"strings"
	"testing"

	"github.com/ispgraph/ispgraph/internal/jobs"
)

func TestParseSchedules(t *testing.T) {
	got, err := ParseSchedules(" MarkOverdueInvoices = */15 * * * * * ; SyncRouterSessions=0,30 * * * * *;")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[jobs.MarkOverdueInvoices] != "*/15 * * * * *" || got[jobs.SyncRouterSessions] != "0,30 * * * * *" {
		t.Fatalf("parsed %q", got)
	}
	if got, err := ParseSchedules(""); err != nil || len(got) != 0 {
		t.Fatalf("empty: %q, %v", got, err)
	}
	for in, want := range map[string]string{
		"ProcessPayment=* * * * * *":         "ProcessPayment is not a periodic job",
		"NoSuchJob=* * * * * *":              "NoSuchJob is not a periodic job",
		"MarkOverdueInvoices=every minute":   "MarkOverdueInvoices=every minute",
		"MarkOverdueInvoices":                "want JobName=cron spec",
		"SendReminders=*/5 * * * * *;=x":     "want JobName=cron spec",
		"GenerateInvoices=61 * * * * *":      "GenerateInvoices=61",
		"ExpireHotspotUsers=* * * * * * * *": "ExpireHotspotUsers",
	} {
		if _, err := ParseSchedules(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSchedules(%q) = %v, want an error mentioning %q", in, err, want)
		}
	}
}
