package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// composeService is the part of a compose service the checks read. Anchors
// and merge keys (<<) are resolved by yaml.v3.
type composeService struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Command     []string          `yaml:"command"`
	Restart     string            `yaml:"restart"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test    []string `yaml:"test"`
		Disable bool     `yaml:"disable"`
	} `yaml:"healthcheck"`
}

// TestCompose parses compose.yaml and checks the deployment it describes:
// Postgres and Redis with health checks, the migrations run once before any
// ispgraph process, two API instances without in-process workers on distinct
// ports, one worker, every dependency a defined service without cycles, and
// configuration names ispgraph reads.
func TestCompose(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]composeService `yaml:"services"`
		Volumes  map[string]any            `yaml:"volumes"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	svcs := doc.Services
	for _, name := range []string{"postgres", "redis", "migrate", "api-1", "api-2", "worker"} {
		if _, ok := svcs[name]; !ok {
			t.Fatalf("compose.yaml has no service %q (has %v)", name, keys(svcs))
		}
	}
	for _, name := range []string{"postgres", "redis"} {
		if hc := svcs[name].Healthcheck; hc == nil || hc.Disable || len(hc.Test) == 0 {
			t.Errorf("%s needs a health check: ispgraph waits for service_healthy", name)
		}
	}
	known := configEnvNames(t)
	var apis, workers, migrates []string
	ports := map[string]string{}
	for name, s := range svcs {
		for dep, d := range s.DependsOn {
			if _, ok := svcs[dep]; !ok {
				t.Errorf("%s depends on undefined service %q", name, dep)
			}
			switch d.Condition {
			case "service_started", "service_healthy", "service_completed_successfully":
			default:
				t.Errorf("%s depends on %s with condition %q", name, dep, d.Condition)
			}
			if d.Condition == "service_healthy" {
				if hc := svcs[dep].Healthcheck; hc == nil || hc.Disable {
					t.Errorf("%s waits for %s to be healthy, which has no health check", name, dep)
				}
			}
		}
		if s.Image != "ispgraph:local" {
			continue
		}
		if s.Build == nil {
			t.Errorf("%s: image ispgraph:local without build", name)
		}
		for _, env := range []string{"DATABASE_URL", "REDIS_URL", "ISPGRAPH_SECRET_KEY"} {
			if s.Environment[env] == "" {
				t.Errorf("%s does not set %s", name, env)
			}
		}
		for k := range s.Environment {
			checkEnvName(t, known, "compose service "+name, k)
		}
		if !strings.Contains(s.Environment["DATABASE_URL"], "@postgres:5432/") || !strings.Contains(s.Environment["REDIS_URL"], "//redis:6379") {
			t.Errorf("%s: DATABASE_URL/REDIS_URL do not point at the compose services", name)
		}
		switch strings.Join(s.Command, " ") {
		case "migrate up":
			migrates = append(migrates, name)
			if s.Restart != "no" {
				t.Errorf("%s: a one-off migration must not restart (restart: %q)", name, s.Restart)
			}
		case "serve":
			apis = append(apis, name)
			if s.Environment["ISPGRAPH_WORKERS"] != "false" {
				t.Errorf("%s runs workers in-process; the worker service runs them", name)
			}
			if len(s.Ports) != 1 {
				t.Errorf("%s: want one published port, have %v", name, s.Ports)
			} else if other, dup := ports[strings.Split(s.Ports[0], ":")[0]]; dup {
				t.Errorf("%s and %s publish the same host port", name, other)
			} else {
				ports[strings.Split(s.Ports[0], ":")[0]] = name
			}
		case "worker":
			workers = append(workers, name)
			if hc := s.Healthcheck; hc == nil || !hc.Disable {
				t.Errorf("%s serves no HTTP: disable the image's /healthz check", name)
			}
		default:
			t.Errorf("%s: unexpected ispgraph command %v", name, s.Command)
		}
	}
	slices.Sort(apis)
	if len(migrates) != 1 || len(apis) != 2 || len(workers) != 1 {
		t.Fatalf("want one migrate, two serve and one worker service; have %v %v %v", migrates, apis, workers)
	}
	for _, name := range append(apis, workers...) {
		d, ok := svcs[name].DependsOn[migrates[0]]
		if !ok || d.Condition != "service_completed_successfully" {
			t.Errorf("%s must start after %s completed successfully", name, migrates[0])
		}
		for _, dep := range []string{"postgres", "redis"} {
			if d, ok := svcs[name].DependsOn[dep]; !ok || d.Condition != "service_healthy" {
				t.Errorf("%s must wait for %s to be healthy", name, dep)
			}
		}
	}
	if d, ok := svcs[migrates[0]].DependsOn["postgres"]; !ok || d.Condition != "service_healthy" {
		t.Errorf("%s must wait for postgres to be healthy", migrates[0])
	}

	// No dependency cycle: compose would refuse to start.
	state := map[string]int{}
	var visit func(string, []string)
	visit = func(n string, path []string) {
		switch state[n] {
		case 1:
			t.Errorf("dependency cycle: %s", strings.Join(append(path, n), " -> "))
			return
		case 2:
			return
		}
		state[n] = 1
		for dep := range svcs[n].DependsOn {
			visit(dep, append(path, n))
		}
		state[n] = 2
	}
	for n := range svcs {
		visit(n, nil)
	}
}
