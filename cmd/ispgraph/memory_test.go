package main

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestMemoryDefaults(t *testing.T) {
	limit0, gc0 := debug.SetMemoryLimit(-1), debug.SetGCPercent(-1)
	debug.SetGCPercent(gc0)
	t.Cleanup(func() { debug.SetMemoryLimit(limit0); debug.SetGCPercent(gc0) })

	debug.SetMemoryLimit(math.MaxInt64)
	debug.SetGCPercent(100)
	limit, gc := applyMemoryDefaults(func(string) string { return "" })
	if limit != defaultMemoryLimit || gc != defaultGCPercent ||
		debug.SetMemoryLimit(-1) != defaultMemoryLimit || debug.SetGCPercent(gc) != defaultGCPercent {
		t.Fatalf("unset environment: set %d, %d", limit, gc)
	}

	// Set by the environment: the runtime read them, serve leaves them.
	debug.SetMemoryLimit(math.MaxInt64)
	debug.SetGCPercent(100)
	env := map[string]string{"GOMEMLIMIT": "320MiB", "GOGC": "100"}
	limit, gc = applyMemoryDefaults(func(k string) string { return env[k] })
	if limit != 0 || gc != 0 || debug.SetMemoryLimit(-1) != math.MaxInt64 || debug.SetGCPercent(100) != 100 {
		t.Fatalf("set environment: changed to %d, %d", limit, gc)
	}
}
