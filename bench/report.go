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
	ScenarioDashboard: "(c) staff dashboard, random tenant, computed: the benchmark runs ispgraph with the dashboard cache class expiring at once (concurrent requests of one tenant share one computation); the baseline computes it every time",
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
	// StatementsAll per request count every statement the server ran,
	// the bearer token check included (ispgraph_sql_statements_total).
	StatementsAll    float64
	HasStatementsAll bool
	// CPU is the server process's CPU time (user + system) during the
	// measured requests; zero when /proc could not be read.
	CPU time.Duration
	// PeakRSS is ispgraph's peak resident memory during the cell (0: unknown).
	PeakRSS  int64
	Baseline Result
}

// CPUPerRequest is the server's CPU time per request of the cell.
func (c Cell) CPUPerRequest() time.Duration {
	if c.ISPGraph.Requests == 0 {
		return 0
	}
	return c.CPU / time.Duration(c.ISPGraph.Requests)
}

// Probe is the statements one request shape costs, measured alone (nothing
// else reaching the server) over a few requests.
type Probe struct {
	Scenario string // the scenario whose target it checks
	Name     string
	// Statements per request, the bearer token check included.
	Statements float64
	Requests   int
	// Err is why the probe could not be measured.
	Err string
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
	// Probes are the statement counts of the request shapes the SQL targets name.
	Probes []Probe
	Notes  []string
}

// Target is one of issue 15's targets with the run's figure.
type Target struct {
	Name, Figure string
	Pass         bool
}

// The thresholds of issue 15, as ratios to the baseline measured in the same
// run where the figure depends on the machine.
const (
	BillingThroughputRatio = 0.5                    // (a) ≥ 0.5 × baseline req/s
	DetailThroughputRatio  = 0.4                    // (b) ≥ 0.4 × baseline req/s
	P99Ratio               = 1.5                    // p99 at 16 clients ≤ 1.5 × baseline's
	BillingCPU             = 3 * time.Millisecond   // (a) server CPU per request
	DetailCPU              = 600 * time.Microsecond // (b) server CPU per request
	MaxStatements          = 4                      // per request, token check included
	MaxRSS                 = 100 << 20              // peak RSS over the whole run
	p99Clients             = 16
)

// Targets evaluates issue 15's targets: throughput as a fraction of the
// baseline's at every client count ((a) 0.5, (b) 0.4), p99 at 16 clients at
// most 1.5 × the baseline's ((a), (b)), server CPU per request ((a) 3 ms, (b)
// 0.6 ms, at every client count), SQL statements per request including the
// token check (at most 4, from the probes), and peak RSS over the whole run.
func (r *Report) Targets() []Target {
	var out []Target
	cells := func(s string) []Cell {
		var cs []Cell
		for _, c := range r.Cells {
			if c.Scenario == s {
				cs = append(cs, c)
			}
		}
		return cs
	}
	for _, x := range []struct {
		s     string
		ratio float64
		cpu   time.Duration
	}{{ScenarioBilling, BillingThroughputRatio, BillingCPU}, {ScenarioDetail, DetailThroughputRatio, DetailCPU}} {
		label := ScenarioTitles[x.s][:3]
		cs := cells(x.s)
		tp := Target{Name: fmt.Sprintf("%s throughput ≥ %.1f × baseline at every client count", label, x.ratio), Pass: len(cs) > 0}
		p99 := Target{Name: fmt.Sprintf("%s p99 at %d clients ≤ %.1f × baseline's", label, p99Clients, P99Ratio), Figure: "not measured"}
		cpu := Target{Name: fmt.Sprintf("%s server CPU per request ≤ %s at every client count", label, x.cpu), Pass: len(cs) > 0}
		var ratios, cpus []string
		for _, c := range cs {
			if c.NotAvailable != "" {
				tp.Pass, cpu.Pass = false, false
				continue
			}
			ratios = append(ratios, fmt.Sprintf("%.2f at %d", c.Ratio(), c.Clients))
			tp.Pass = tp.Pass && c.Ratio() >= x.ratio && c.ISPGraph.Errors == 0
			if c.CPU > 0 {
				cpus = append(cpus, fmt.Sprintf("%s at %d", msPrec(c.CPUPerRequest()), c.Clients))
				cpu.Pass = cpu.Pass && c.CPUPerRequest() <= x.cpu
			} else {
				cpus = append(cpus, fmt.Sprintf("unknown at %d", c.Clients))
				cpu.Pass = false
			}
			if c.Clients == p99Clients {
				isp, base := c.ISPGraph.Percentile(0.99), c.Baseline.Percentile(0.99)
				p99.Figure = fmt.Sprintf("%s vs %s (%.2f ×)", ms(isp), ms(base), float64(isp)/float64(max(base, 1)))
				p99.Pass = base > 0 && float64(isp) <= P99Ratio*float64(base) && c.ISPGraph.Errors == 0
			}
		}
		tp.Figure, cpu.Figure = join(ratios), join(cpus)
		out = append(out, tp, p99, cpu)
	}
	for _, s := range []string{ScenarioBilling, ScenarioDetail} {
		t := Target{Name: fmt.Sprintf("%s SQL statements per request, token check included, ≤ %d", ScenarioTitles[s][:3], MaxStatements), Pass: true}
		var figs []string
		for _, p := range r.Probes {
			if p.Scenario != s {
				continue
			}
			if p.Err != "" {
				figs = append(figs, p.Name+": "+p.Err)
				t.Pass = false
				continue
			}
			figs = append(figs, fmt.Sprintf("%s: %.1f", p.Name, p.Statements))
			t.Pass = t.Pass && p.Statements <= MaxStatements
		}
		if len(figs) == 0 {
			t.Pass = false
		}
		t.Figure = join(figs)
		out = append(out, t)
	}
	rss := Target{Name: fmt.Sprintf("ispgraph peak RSS ≤ %d MB over the whole run", MaxRSS>>20), Figure: "unknown"}
	if r.PeakRSS > 0 {
		rss.Figure, rss.Pass = fmt.Sprintf("%.0f MB", float64(r.PeakRSS)/(1<<20)), r.PeakRSS <= MaxRSS
	}
	return append(out, rss)
}

func join(figs []string) string {
	if len(figs) == 0 {
		return "not measured"
	}
	return strings.Join(figs, ", ")
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
		"SQL/req is read from ispgraph's `/metrics`: *GraphQL* counts the statements of the GraphQL execution " +
		"(`ispgraph_sql_statements_per_request`), *all* every statement the server ran over the requests sent, the bearer token check included " +
		"(`ispgraph_sql_statements_total`); the baseline runs one statement per request by construction. " +
		"CPU/req is the server process's user + system time over the measured requests (`/proc/<pid>/stat`).\n")
	last := ""
	for _, c := range r.Cells {
		if c.Scenario != last {
			last = c.Scenario
			fmt.Fprintf(&b, "\n**%s**\n\n", ScenarioTitles[c.Scenario])
			b.WriteString("| clients | ispgraph req/s | p50 | p99 | SQL/req GraphQL | SQL/req all | CPU/req | peak RSS | errors | baseline req/s | p50 | p99 | errors | ispgraph / baseline |\n")
			b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		}
		base := fmt.Sprintf("%.1f | %s | %s | %s", c.Baseline.RPS(), ms(c.Baseline.Percentile(0.5)), ms(c.Baseline.Percentile(0.99)), errs(c.Baseline))
		if c.NotAvailable != "" {
			fmt.Fprintf(&b, "| %d | not available: %s | | | | | | | | %s | |\n", c.Clients, c.NotAvailable, base)
			continue
		}
		stmts := "n/a"
		if c.HasStatements {
			stmts = fmt.Sprintf("%.1f", c.Statements)
		}
		all := "n/a"
		if c.HasStatementsAll {
			all = fmt.Sprintf("%.1f", c.StatementsAll)
		}
		cpu := "n/a"
		if c.CPU > 0 {
			cpu = msPrec(c.CPUPerRequest())
		}
		rss := "n/a"
		if c.PeakRSS > 0 {
			rss = fmt.Sprintf("%.0f MB", float64(c.PeakRSS)/(1<<20))
		}
		fmt.Fprintf(&b, "| %d | %.1f | %s | %s | %s | %s | %s | %s | %s | %s | %.2f |\n", c.Clients, c.ISPGraph.RPS(),
			ms(c.ISPGraph.Percentile(0.5)), ms(c.ISPGraph.Percentile(0.99)), stmts, all, cpu, rss, errs(c.ISPGraph), base, c.Ratio())
	}
	if len(r.Probes) > 0 {
		b.WriteString("\n### SQL statements per request, token check included\n\n" +
			"Each shape sent alone, one request at a time, after the server has answered it once (a warm server); " +
			"`ispgraph_sql_statements_total` over the requests sent.\n\n| request | statements per request | requests |\n|---|---:|---:|\n")
		for _, p := range r.Probes {
			fig := fmt.Sprintf("%.1f", p.Statements)
			if p.Err != "" {
				fig = p.Err
			}
			fmt.Fprintf(&b, "| %s | %s | %d |\n", p.Name, fig, p.Requests)
		}
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

// msPrec renders a short duration in milliseconds with two decimals.
func msPrec(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000)
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
