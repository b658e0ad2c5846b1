package deploy

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ispgraph/ispgraph/internal/config"
)

// repoRoot is the repository root, relative to this package's directory.
const repoRoot = ".."

// needTool returns the path of a command the test needs: missing, it skips
// the test on a developer machine and fails it in CI (CI=true).
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed; .ci/run installs it in CI", name)
	}
	t.Skipf("%s is not installed here (CI installs it): %v", name, err)
	return ""
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// staticBinary builds ./cmd/ispgraph as the Dockerfile does (CGO_ENABLED=0),
// once per test run.
func staticBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "ispgraph-deploy-")
		if buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "ispgraph")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/ispgraph")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("CGO_ENABLED=0 go build ./cmd/ispgraph: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// configEnvNames are the variables internal/config reads, found by asking
// FromEnv with a getenv that records its keys.
func configEnvNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	if _, err := config.FromEnv(func(k string) string { names[k] = true; return "" }); err != nil {
		t.Fatal(err)
	}
	if len(names) < 10 {
		t.Fatalf("config.FromEnv read only %d variables", len(names))
	}
	// Read by the Go runtime, not by config.
	names["GOMEMLIMIT"] = true
	return names
}

func checkEnvName(t *testing.T, known map[string]bool, where, name string) {
	t.Helper()
	if !known[name] {
		t.Errorf("%s sets %s, which ispgraph does not read (typo?)", where, name)
	}
}

func readFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dockerInstruction is one instruction of a Dockerfile, continuation lines joined.
type dockerInstruction struct {
	Op, Args string
	Stage    int
}

func parseDockerfile(src string) []dockerInstruction {
	var out []dockerInstruction
	stage := -1
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		op, args, _ := strings.Cut(line, " ")
		op = strings.ToUpper(op)
		if op == "FROM" {
			stage++
		}
		out = append(out, dockerInstruction{Op: op, Args: strings.TrimSpace(args), Stage: stage})
	}
	for _, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	return out
}

// TestDockerfile checks the image definition (multi-stage, static build,
// non-root, health check through the binary) and builds the binary the way
// its build stage does: it must be statically linked, and its healthcheck
// command must tell a healthy server from an unhealthy or absent one.
func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(readFile(t, "Dockerfile"))
	var froms, runs []dockerInstruction
	last := map[string]dockerInstruction{}
	for _, in := range ins {
		switch in.Op {
		case "FROM":
			froms = append(froms, in)
		case "RUN":
			runs = append(runs, in)
		}
		last[in.Op] = in
	}
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, found %d FROM", len(froms))
	}
	final := len(froms) - 1
	buildStage := strings.Fields(froms[0].Args)
	if len(buildStage) != 3 || !strings.EqualFold(buildStage[1], "AS") {
		t.Fatalf("first stage %q: want `FROM image AS name`", froms[0].Args)
	}
	built := false
	for _, r := range runs {
		if r.Stage < final && strings.Contains(r.Args, "CGO_ENABLED=0") && strings.Contains(r.Args, "go build") && strings.Contains(r.Args, "./cmd/ispgraph") {
			built = true
		}
		if r.Stage == final {
			t.Errorf("final stage runs %q: the runtime image has no shell", r.Args)
		}
	}
	if !built {
		t.Error("no build stage runs CGO_ENABLED=0 go build ./cmd/ispgraph")
	}
	copied := false
	for _, in := range ins {
		if in.Op == "COPY" && in.Stage == final && strings.Contains(in.Args, "--from="+buildStage[2]) && strings.Contains(in.Args, "/usr/local/bin/ispgraph") {
			copied = true
		}
	}
	if !copied {
		t.Errorf("final stage does not copy the binary from stage %q to /usr/local/bin/ispgraph", buildStage[2])
	}
	user, ok := last["USER"]
	if !ok || user.Stage != final {
		t.Fatal("final stage has no USER")
	}
	if u, _, _ := strings.Cut(user.Args, ":"); u == "0" || u == "root" || u == "" {
		t.Errorf("USER %q: want a non-root user", user.Args)
	}
	hc, ok := last["HEALTHCHECK"]
	if !ok || hc.Stage != final || !strings.Contains(hc.Args, `"/usr/local/bin/ispgraph", "healthcheck"`) {
		t.Errorf("final stage HEALTHCHECK %q: want CMD [\"/usr/local/bin/ispgraph\", \"healthcheck\"]", hc.Args)
	}
	if ep := last["ENTRYPOINT"]; ep.Args != `["/usr/local/bin/ispgraph"]` {
		t.Errorf("ENTRYPOINT %q", ep.Args)
	}
	known := configEnvNames(t)
	for _, in := range ins {
		if in.Op != "ENV" {
			continue
		}
		for _, kv := range strings.Fields(in.Args) {
			name, _, _ := strings.Cut(kv, "=")
			checkEnvName(t, known, "Dockerfile ENV", name)
		}
	}

	bin := staticBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary has a %v program header: it is not static", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary needs shared libraries %v", libs)
	}

	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	defer healthy.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close()
	for _, c := range []struct {
		url  string
		want int
	}{{healthy.URL + "/healthz", 0}, {failing.URL + "/healthz", 1}, {goneURL + "/healthz", 1}, {healthy.URL + "/other", 1}} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, bin, "healthcheck", "-url", c.url).CombinedOutput()
		cancel()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.want {
			t.Errorf("ispgraph healthcheck -url %s: exit %d, want %d\n%s", c.url, code, c.want, out)
		}
	}
}

// TestSystemdUnits runs systemd-analyze verify on the units (with ExecStart
// pointing at a freshly built binary; the template instantiated), requires
// their hardening to keep systemd's exposure score low, and checks the
// commands and settings they pass.
func TestSystemdUnits(t *testing.T) {
	analyze := needTool(t, "systemd-analyze")
	bin := staticBinary(t)
	dir := t.TempDir()
	units := map[string]string{ // installed name -> file
		"ispgraph-migrate.service":    "ispgraph-migrate.service",
		"ispgraph-serve@8081.service": "ispgraph-serve@.service",
		"ispgraph-worker.service":     "ispgraph-worker.service",
	}
	wantCmd := map[string]string{
		"ispgraph-migrate.service":    "migrate up",
		"ispgraph-serve@8081.service": "serve",
		"ispgraph-worker.service":     "worker",
	}
	known := configEnvNames(t)
	hardening := []string{"DynamicUser=yes", "NoNewPrivileges=yes", "CapabilityBoundingSet=", "ProtectSystem=strict",
		"ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
		"SystemCallFilter=@system-service", "MemoryDenyWriteExecute=yes", "RestrictNamespaces=yes"}
	var paths []string
	for name, file := range units {
		src := readFile(t, filepath.Join("deploy/systemd", file))
		lines := strings.Split(src, "\n")
		for _, h := range hardening {
			if !slices.Contains(lines, h) {
				t.Errorf("%s lacks %s", file, h)
			}
		}
		var exec string
		for _, l := range lines {
			if v, ok := strings.CutPrefix(l, "ExecStart="); ok {
				exec = v
			}
			if v, ok := strings.CutPrefix(l, "Environment="); ok {
				n, _, _ := strings.Cut(v, "=")
				checkEnvName(t, known, file, n)
			}
		}
		if !strings.HasPrefix(exec, "/usr/local/bin/ispgraph "+wantCmd[name]) {
			t.Errorf("%s: ExecStart=%s, want /usr/local/bin/ispgraph %s", file, exec, wantCmd[name])
		}
		if !slices.Contains(lines, "EnvironmentFile=/etc/ispgraph/ispgraph.env") {
			t.Errorf("%s does not read /etc/ispgraph/ispgraph.env", file)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(src, "/usr/local/bin/ispgraph", bin)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	slices.Sort(paths)

	out, err := exec.Command(analyze, append([]string{"verify"}, paths...)...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The check itself: verify must reject a unit with an unknown key.
	bad := filepath.Join(dir, "ispgraph-bad.service")
	os.WriteFile(bad, []byte("[Service]\nExecStart="+bin+" serve\nProtectSytem=strict\n"), 0o644)
	if out, _ := exec.Command(analyze, "verify", bad).CombinedOutput(); !bytes.Contains(out, []byte("ProtectSytem")) {
		t.Errorf("systemd-analyze verify did not report a misspelt key: %s", out)
	}

	// Exposure is 0-10 as printed; the threshold is on a 0-100 scale.
	for _, p := range paths {
		out, err := exec.Command(analyze, "security", "--offline=true", "--threshold=20", p).CombinedOutput()
		if err != nil {
			t.Errorf("systemd-analyze security %s: exposure above 2.0 (%v):\n%s", filepath.Base(p), err, out)
			continue
		}
		m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
		if m == nil {
			t.Errorf("systemd-analyze security %s printed no exposure level:\n%s", filepath.Base(p), out)
			continue
		}
		t.Logf("%s: exposure %s", filepath.Base(p), m[1])
	}

	env := readFile(t, "deploy/systemd/ispgraph.env.example")
	for _, l := range strings.Split(env, "\n") {
		// "#NAME=value" is an optional setting, commented out: checked too.
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "#") && strings.Contains(l, "=") && !strings.Contains(l, " ") {
			l = strings.TrimPrefix(l, "#")
		}
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		n, _, _ := strings.Cut(l, "=")
		checkEnvName(t, known, "ispgraph.env.example", n)
	}
}
