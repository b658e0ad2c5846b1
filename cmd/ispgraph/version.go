package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// versionString names the build: the module version, the VCS commit and
// whether the tree was modified, and the Go version, from the build info Go
// embeds in every binary.
func versionString() string {
	version, revision, modified := "(devel)", "unknown", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if modified {
		revision += "+modified"
	}
	return fmt.Sprintf("ispgraph %s (commit %s, %s)", version, revision, runtime.Version())
}

// buildInfo is the ispgraph_build_info gauge: always 1, labelled with the
// version, commit and Go version, so dashboards can tell which build runs.
func buildInfo() prometheus.Collector {
	version, revision := "(devel)", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ispgraph_build_info", Help: "The running build: version, VCS commit and Go version (always 1).",
	}, []string{"version", "revision", "goversion"})
	g.WithLabelValues(version, revision, runtime.Version()).Set(1)
	return g
}
