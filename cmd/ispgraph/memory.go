package main

import (
	"runtime/debug"
)

// The garbage collector's defaults for `serve` when the environment sets
// none (issue 15, docs/benchmarks.md). A request allocates a lot of
// short-lived memory (the partner page about 3 MB in 67 000 objects) over a
// small live heap, so at Go's default (GOGC=100, no limit) the collector runs
// every few requests and the heap's peak follows the number of requests in
// flight: 161 MB of RSS in the benchmark at 32 clients. A soft limit bounds
// the peak; a higher GOGC spaces collections while the heap is far below it.
// The limit is what keeps the benchmark's peak RSS under 100 MB: 40-45 MB
// of that is the binary's own mapped pages, which no setting here moves, and
// the live heap is 8-13 MB. At 80 MiB the peak was 119-133 MB; at 48 MiB
// it is 93-95 MB, for a CPU per request within the machine's noise on the
// partner page and the subscriber detail and about 20 % more on the export
// of 500-row pages (docs/benchmarks.md, "fifth pass" and "sixth pass").
// GOMEMLIMIT and GOGC, when set (the deploy files set GOMEMLIMIT to fit
// their containers), are the runtime's own and win.
const (
	defaultMemoryLimit = 48 << 20 // bytes: all memory the Go runtime manages
	defaultGCPercent   = 200
)

// applyMemoryDefaults sets the limit and GOGC that getenv leaves unset and
// returns what it set (0 for left alone).
func applyMemoryDefaults(getenv func(string) string) (limit int64, gcPercent int) {
	if getenv("GOMEMLIMIT") == "" {
		limit = defaultMemoryLimit
		debug.SetMemoryLimit(limit)
	}
	if getenv("GOGC") == "" {
		gcPercent = defaultGCPercent
		debug.SetGCPercent(gcPercent)
	}
	return limit, gcPercent
}
