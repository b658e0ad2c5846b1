package bench

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// PeakRSS returns the peak resident set size (VmHWM) of process pid in bytes.
func PeakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM %q: %w", v, err)
			}
			return kb * 1024, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmHWM", pid)
}

// ResetPeakRSS starts a new peak for PeakRSS (Linux clear_refs "5"), so
// each measurement reports its own peak. It fails where that is not allowed.
func ResetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// StatementCounters are the server's SQL statement figures from /metrics.
type StatementCounters struct {
	// HistSum and HistCount are ispgraph_sql_statements_per_request's sum and count.
	HistSum, HistCount float64
	// Total is ispgraph_sql_statements_total.
	Total float64
	// Present says which of them the server exposes.
	HasHist, HasTotal bool
}

// ScrapeStatements reads the SQL statement metrics from a Prometheus text endpoint.
func ScrapeStatements(client *http.Client, url string) (StatementCounters, error) {
	var c StatementCounters
	resp, err := client.Get(url)
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return c, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			continue
		}
		switch name {
		case "ispgraph_sql_statements_per_request_sum":
			c.HistSum, c.HasHist = v, true
		case "ispgraph_sql_statements_per_request_count":
			c.HistCount = v
		case "ispgraph_sql_statements_total":
			c.Total, c.HasTotal = v, true
		}
	}
	return c, sc.Err()
}

// PerRequest returns the statements per request between two scrapes: from the
// per-request histogram when it observed requests, else from the statement
// counter over requests (the requests the benchmark sent); ok is false when
// the server counts neither.
func PerRequest(before, after StatementCounters, requests int) (perRequest float64, ok bool) {
	if after.HasHist && after.HistCount > before.HistCount {
		return (after.HistSum - before.HistSum) / (after.HistCount - before.HistCount), true
	}
	if after.HasTotal && after.Total > before.Total && requests > 0 {
		return (after.Total - before.Total) / float64(requests), true
	}
	return 0, false
}

// ClockTicks is the unit of /proc/<pid>/stat's CPU times (USER_HZ, 100 on
// every Linux architecture Go supports).
const ClockTicks = 100

// ProcessCPU returns the CPU time (user + system, all threads) process pid
// has used so far, from /proc/<pid>/stat, at a resolution of 1/ClockTicks s.
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a /proc/<pid>/stat
// line. The command name (field 2) is in parentheses and may hold spaces, so
// fields are counted after its closing parenthesis.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat %.40q: no command name", stat)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state): utime is field 14, f[11]; stime f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields after the command name", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat CPU time %q: %w", s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / ClockTicks, nil
}

// StatementsIncludingAuth is the statements per request between two scrapes
// counted by ispgraph_sql_statements_total, which, unlike the per-request
// histogram, also counts what runs before the GraphQL execution (the bearer
// token check). Valid when nothing but the measured requests reached the
// server between the scrapes; ok is false when the server does not count.
func StatementsIncludingAuth(before, after StatementCounters, requests int) (perRequest float64, ok bool) {
	if !after.HasTotal || requests <= 0 {
		return 0, false
	}
	return (after.Total - before.Total) / float64(requests), true
}
