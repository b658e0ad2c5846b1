package bench

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// Scenario names, in report order.
const (
	ScenarioBilling   = "billing"
	ScenarioDetail    = "detail"
	ScenarioDashboard = "dashboard"
	ScenarioExport    = "export"
)

// ScenarioTitles describe the scenarios in the report.
var ScenarioTitles = map[string]string{
	ScenarioBilling:   "(a) partner billing, first: 50, random tenant and page",
	ScenarioDetail:    "(b) subscriber detail, 12 invoices with payments, random tenant and subscriber",
	ScenarioDashboard: "(c) staff dashboard, random tenant (ispgraph serves it through the dashboard cache class, so a warm read runs no SQL)",
	ScenarioExport:    "(d) invoice export changed since, 500 per page by keyset cursor",
}

// Cell is one scenario at one client count, on both servers.
type Cell struct {
	Scenario string
	Clients  int
	// NotAvailable says why ispgraph was not measured (empty when it was).
	NotAvailable string
	ISPGraph     Result
	// Statements per request on ispgraph; HasStatements is false when the
	// server does not count them.
	Statements    float64
	HasStatements bool
	// PeakRSS is ispgraph's peak resident memory during the cell (0: unknown).
	PeakRSS  int64
	Baseline Result
}

// Ratio is ispgraph's throughput as a fraction of the baseline's.
func (c Cell) Ratio() float64 {
	if c.NotAvailable != "" || c.Baseline.RPS() == 0 {
		return 0
	}
	return c.ISPGraph.RPS() / c.Baseline.RPS()
}

// Report is one benchmark run.
type Report struct {
	Started  time.Time
	Finished time.Time
	// Environment lines: machine, versions, load, data set, settings.
	Environment []string
	Cells       []Cell
	// PeakRSS is ispgraph's peak resident memory over the whole run;
	// SetupPeakRSS its peak before the first cell (start-up, logins, and
	// collecting every active subscriber's cursor in pages of 500).
	PeakRSS, SetupPeakRSS int64
	Notes                 []string
}

// Target is one of issue 4's targets with the run's figure.
type Target struct {
	Name, Figure string
	Pass         bool
}

// Targets evaluates issue 4's targets: ≥ 0.5 of the baseline's throughput on
// (a) at every client count, p99 under 200 ms at 16 clients on (a)–(c),
// peak RSS under 200 MB.
func (r *Report) Targets() []Target {
	var out []Target
	t := Target{Name: "(a) throughput ≥ 0.5 × baseline at every client count"}
	var ratios []string
	for _, c := range r.Cells {
		if c.Scenario != ScenarioBilling {
			continue
		}
		if len(ratios) == 0 {
			t.Pass = true
		}
		ratios = append(ratios, fmt.Sprintf("%.2f at %d", c.Ratio(), c.Clients))
		if c.NotAvailable != "" || c.Ratio() < 0.5 {
			t.Pass = false
		}
	}
	t.Figure = strings.Join(ratios, ", ")
	if t.Figure == "" {
		t.Figure = "not measured"
	}
	out = append(out, t)
	for _, s := range []string{ScenarioBilling, ScenarioDetail, ScenarioDashboard} {
		t := Target{Name: ScenarioTitles[s][:3] + " p99 < 200 ms at 16 clients", Figure: "not measured"}
		for _, c := range r.Cells {
			if c.Scenario != s || c.Clients != 16 {
				continue
			}
			if c.NotAvailable != "" {
				t.Figure = "not available: " + c.NotAvailable
				break
			}
			p99 := c.ISPGraph.Percentile(0.99)
			t.Figure, t.Pass = ms(p99), p99 < 200*time.Millisecond && c.ISPGraph.Errors == 0
			if c.ISPGraph.Errors > 0 {
				t.Figure += fmt.Sprintf(" (%d errors)", c.ISPGraph.Errors)
			}
		}
		out = append(out, t)
	}
	rss := Target{Name: "ispgraph peak RSS < 200 MB", Figure: "unknown"}
	if r.PeakRSS > 0 {
		rss.Figure, rss.Pass = fmt.Sprintf("%.0f MB", float64(r.PeakRSS)/(1<<20)), r.PeakRSS < 200<<20
	}
	return append(out, rss)
}

// Markdown renders the report.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Run of %s UTC\n\n", r.Started.UTC().Format("2006-01-02 15:04"))
	for _, e := range r.Environment {
		fmt.Fprintf(&b, "- %s\n", e)
	}
	b.WriteString("\n### Targets\n\n| target | figure | result |\n|---|---|---|\n")
	for _, t := range r.Targets() {
		res := "FAIL"
		if t.Pass {
			res = "pass"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", t.Name, t.Figure, res)
	}
	b.WriteString("\n### Figures\n\nLatencies are of successful requests; req/s counts successful requests. " +
		"SQL/req is read from ispgraph's `/metrics`; the baseline runs one statement per request by construction.\n")
	last := ""
	for _, c := range r.Cells {
		if c.Scenario != last {
			last = c.Scenario
			fmt.Fprintf(&b, "\n**%s**\n\n", ScenarioTitles[c.Scenario])
			b.WriteString("| clients | ispgraph req/s | p50 | p99 | SQL/req | peak RSS | errors | baseline req/s | p50 | p99 | errors | ispgraph / baseline |\n")
			b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		}
		base := fmt.Sprintf("%.1f | %s | %s | %s", c.Baseline.RPS(), ms(c.Baseline.Percentile(0.5)), ms(c.Baseline.Percentile(0.99)), errs(c.Baseline))
		if c.NotAvailable != "" {
			fmt.Fprintf(&b, "| %d | not available: %s | | | | | | %s | |\n", c.Clients, c.NotAvailable, base)
			continue
		}
		stmts := "n/a"
		if c.HasStatements {
			stmts = fmt.Sprintf("%.1f", c.Statements)
		}
		rss := "n/a"
		if c.PeakRSS > 0 {
			rss = fmt.Sprintf("%.0f MB", float64(c.PeakRSS)/(1<<20))
		}
		fmt.Fprintf(&b, "| %d | %.1f | %s | %s | %s | %s | %s | %s | %.2f |\n", c.Clients, c.ISPGraph.RPS(),
			ms(c.ISPGraph.Percentile(0.5)), ms(c.ISPGraph.Percentile(0.99)), stmts, rss, errs(c.ISPGraph), base, c.Ratio())
	}
	var firstErrs []string
	for _, c := range r.Cells {
		if c.ISPGraph.FirstError != "" {
			firstErrs = append(firstErrs, fmt.Sprintf("ispgraph %s at %d clients: %s", c.Scenario, c.Clients, c.ISPGraph.FirstError))
		}
		if c.Baseline.FirstError != "" {
			firstErrs = append(firstErrs, fmt.Sprintf("baseline %s at %d clients: %s", c.Scenario, c.Clients, c.Baseline.FirstError))
		}
	}
	if len(firstErrs) > 0 {
		b.WriteString("\n### First error of each cell with errors\n\n")
		for _, e := range firstErrs {
			fmt.Fprintf(&b, "- %s\n", e)
		}
	}
	notes := r.Notes
	if r.SetupPeakRSS > 0 {
		notes = append(notes, fmt.Sprintf("ispgraph's peak RSS before the first cell (start-up, logins, collecting every active "+
			"subscriber's cursor in pages of %d): %.0f MB; the per-cell column is the peak within the cell (VmHWM reset before it).",
			ExportPageSize, float64(r.SetupPeakRSS)/(1<<20)))
	}
	counted := false
	for _, c := range r.Cells {
		counted = counted || c.HasStatements
	}
	if !counted {
		notes = append(notes, "SQL/req is n/a: this ispgraph build exposes no per-request statement count "+
			"(`ispgraph_sql_statements_per_request` is never observed and `ispgraph_sql_statements_total` never rises).")
	}
	if len(notes) > 0 {
		b.WriteString("\n### Notes\n\n")
		for _, n := range notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
}

func errs(r Result) string {
	if r.Requests == 0 {
		return "0"
	}
	return fmt.Sprintf("%d", r.Errors)
}

// Markers delimit the latest run in docs/benchmarks.md; the rest of the file
// (the seeding figures, explanations) is kept.
const (
	MarkerStart = "<!-- bench:latest-run:start -->"
	MarkerEnd   = "<!-- bench:latest-run:end -->"
)

// UpdateDoc replaces the text between the markers of the file at path with
// section, appending the markers and the section when the file has none
// (and creating the file when it does not exist).
func UpdateDoc(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	block := MarkerStart + "\n" + section + MarkerEnd + "\n"
	text := string(old)
	start, end := strings.Index(text, MarkerStart), strings.Index(text, MarkerEnd)
	switch {
	case start >= 0 && end > start:
		text = text[:start] + block + strings.TrimPrefix(text[end+len(MarkerEnd):], "\n")
	case text == "":
		text = "# Benchmarks\n\n" + block
	default:
		text = strings.TrimRight(text, "\n") + "\n\n" + block
	}
	return os.WriteFile(path, []byte(text), 0o644)
}
