package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// Memory figures of `ispgraph serve` from docs/benchmarks.md: the peak under
// query load alone, and the extra of one staff login's argon2id hash (at most
// two run at once per process).
const (
	benchQueryPeakMB   = 130
	argon2PerLoginMiB  = 64
	concurrentArgon2   = 2
	kubernetesManifest = "deploy/kubernetes"
)

// manifests decodes every document of deploy/kubernetes strictly into its
// Kubernetes API type: an unknown or misspelt field, or a value of the wrong
// type, fails the test.
type manifests struct {
	deployments map[string]*appsv1.Deployment
	jobs        map[string]*batchv1.Job
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	pdbs        map[string]*policyv1.PodDisruptionBudget
	files       []string
}

func loadManifests(t *testing.T) manifests {
	t.Helper()
	m := manifests{
		deployments: map[string]*appsv1.Deployment{}, jobs: map[string]*batchv1.Job{},
		services: map[string]*corev1.Service{}, configMaps: map[string]*corev1.ConfigMap{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{},
	}
	files, err := filepath.Glob(filepath.Join(repoRoot, kubernetesManifest, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	for _, f := range files {
		base := filepath.Base(f)
		if base == "kustomization.yaml" {
			continue
		}
		m.files = append(m.files, base)
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range strings.Split(string(raw), "\n---\n") {
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s document %d: %v", base, i, err)
			}
			var (
				obj      any
				name     *string
				register = func() {}
			)
			switch tm.APIVersion + " " + tm.Kind {
			case "apps/v1 Deployment":
				o := &appsv1.Deployment{}
				obj, name = o, &o.Name
				register = func() { m.deployments[o.Name] = o }
			case "batch/v1 Job":
				o := &batchv1.Job{}
				obj, name = o, &o.Name
				register = func() { m.jobs[o.Name] = o }
			case "v1 Service":
				o := &corev1.Service{}
				obj, name = o, &o.Name
				register = func() { m.services[o.Name] = o }
			case "v1 ConfigMap":
				o := &corev1.ConfigMap{}
				obj, name = o, &o.Name
				register = func() { m.configMaps[o.Name] = o }
			case "policy/v1 PodDisruptionBudget":
				o := &policyv1.PodDisruptionBudget{}
				obj, name = o, &o.Name
				register = func() { m.pdbs[o.Name] = o }
			case "v1 Namespace":
				o := &corev1.Namespace{}
				obj, name = o, &o.Name
			default:
				t.Fatalf("%s document %d: unexpected kind %q %q", base, i, tm.APIVersion, tm.Kind)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s document %d (%s): %v", base, i, tm.Kind, err)
			}
			if *name == "" {
				t.Errorf("%s document %d (%s) has no name", base, i, tm.Kind)
			}
			register()
		}
	}
	return m
}

// TestKubernetesManifests decodes the manifests into the API types and checks
// what a cluster would only reveal at run time: selectors that match their
// pods, probes on /healthz and /readyz at a declared port, resource requests
// sized from the benchmark, non-root pods, a PodDisruptionBudget that leaves
// room to drain a node, configuration names ispgraph reads.
func TestKubernetesManifests(t *testing.T) {
	// The check itself: strict decoding refuses a misspelt field.
	if err := yaml.UnmarshalStrict([]byte("apiVersion: apps/v1\nkind: Deployment\nspec:\n  replica: 2\n"), &appsv1.Deployment{}); err == nil {
		t.Fatal("strict decoding accepted an unknown field")
	}
	m := loadManifests(t)
	known := configEnvNames(t)

	api, worker := m.deployments["ispgraph-api"], m.deployments["ispgraph-worker"]
	job := m.jobs["ispgraph-migrate"]
	if api == nil || worker == nil || job == nil {
		t.Fatalf("want Deployments ispgraph-api and ispgraph-worker and Job ispgraph-migrate; have %v %v", keys(m.deployments), keys(m.jobs))
	}

	type podOwner struct {
		name     string
		spec     corev1.PodSpec
		args     []string
		selector *metav1.LabelSelector
		labels   map[string]string
	}
	owners := []podOwner{
		{"ispgraph-api", api.Spec.Template.Spec, []string{"serve"}, api.Spec.Selector, api.Spec.Template.Labels},
		{"ispgraph-worker", worker.Spec.Template.Spec, []string{"worker"}, worker.Spec.Selector, worker.Spec.Template.Labels},
		{"ispgraph-migrate", job.Spec.Template.Spec, []string{"migrate", "up"}, nil, job.Spec.Template.Labels},
	}
	for _, o := range owners {
		if o.selector != nil {
			sel, err := metav1.LabelSelectorAsSelector(o.selector)
			if err != nil || !sel.Matches(labels.Set(o.labels)) {
				t.Errorf("%s: selector %v does not match its pod labels %v (%v)", o.name, o.selector, o.labels, err)
			}
		}
		ps := o.spec
		if ps.SecurityContext == nil || ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot {
			t.Errorf("%s: pod must set runAsNonRoot", o.name)
		}
		if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
			t.Errorf("%s: ispgraph does not talk to the Kubernetes API; set automountServiceAccountToken: false", o.name)
		}
		if len(ps.Containers) != 1 {
			t.Fatalf("%s: want one container, have %d", o.name, len(ps.Containers))
		}
		c := ps.Containers[0]
		if !slices.Equal(c.Args, o.args) {
			t.Errorf("%s: args %v, want %v", o.name, c.Args, o.args)
		}
		if c.Image != "ispgraph" {
			t.Errorf("%s: image %q, want ispgraph (kustomization.yaml sets the registry and tag)", o.name, c.Image)
		}
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s: container must forbid privilege escalation, drop ALL capabilities and mount its root read-only", o.name)
		}
		req, lim := c.Resources.Requests, c.Resources.Limits
		if req.Cpu().IsZero() || req.Memory().IsZero() || lim.Memory().IsZero() {
			t.Errorf("%s: wants cpu and memory requests and a memory limit; have %v / %v", o.name, req, lim)
		}
		if lim.Memory().Cmp(*req.Memory()) < 0 {
			t.Errorf("%s: memory limit %v below request %v", o.name, lim.Memory(), req.Memory())
		}
		hasSecret := false
		for _, ef := range c.EnvFrom {
			if ef.SecretRef != nil && ef.SecretRef.Name == "ispgraph-secrets" {
				hasSecret = true
			}
			if ef.ConfigMapRef != nil {
				cm := m.configMaps[ef.ConfigMapRef.Name]
				if cm == nil {
					t.Errorf("%s: ConfigMap %q is not among the manifests", o.name, ef.ConfigMapRef.Name)
					continue
				}
				for k := range cm.Data {
					checkEnvName(t, known, "ConfigMap "+cm.Name, k)
				}
			}
		}
		if !hasSecret {
			t.Errorf("%s: does not read the Secret ispgraph-secrets (DATABASE_URL, REDIS_URL, ISPGRAPH_SECRET_KEY)", o.name)
		}
		for _, e := range c.Env {
			checkEnvName(t, known, o.name, e.Name)
			if e.Name == "GOMEMLIMIT" {
				q, err := resource.ParseQuantity(strings.TrimSuffix(e.Value, "B"))
				if err != nil {
					t.Errorf("%s: GOMEMLIMIT=%q: %v", o.name, e.Value, err)
				} else if q.Cmp(*lim.Memory()) >= 0 {
					t.Errorf("%s: GOMEMLIMIT %s must stay below the memory limit %v", o.name, e.Value, lim.Memory())
				}
			}
		}
	}

	// The API: probes, ports, sizing, rollout, Service and PDB.
	c := api.Spec.Template.Spec.Containers[0]
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	probe := func(what string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("api: no HTTP %s probe", what)
			return
		}
		if p.HTTPGet.Path != path {
			t.Errorf("api: %s probe on %q, want %q", what, p.HTTPGet.Path, path)
		}
		if _, ok := ports[p.HTTPGet.Port.String()]; !ok {
			t.Errorf("api: %s probe port %q is not a declared container port %v", what, p.HTTPGet.Port.String(), ports)
		}
	}
	probe("liveness", c.LivenessProbe, "/healthz")
	probe("startup", c.StartupProbe, "/healthz")
	probe("readiness", c.ReadinessProbe, "/readyz")
	addr := ""
	for _, e := range c.Env {
		if e.Name == "ISPGRAPH_ADDR" {
			addr = e.Value
		}
		if e.Name == "ISPGRAPH_WORKERS" && e.Value != "false" {
			t.Errorf("api: ISPGRAPH_WORKERS=%q; jobs belong to the worker Deployment", e.Value)
		}
	}
	if want := ":" + itoa(ports["http"]); addr != want {
		t.Errorf("api: ISPGRAPH_ADDR=%q, but the http port is %d", addr, ports["http"])
	}
	mib := func(q *resource.Quantity) int64 { return q.Value() / (1 << 20) }
	if got := mib(c.Resources.Requests.Memory()); got < benchQueryPeakMB {
		t.Errorf("api: memory request %d MiB is below the benchmark's %d MB under query load", got, benchQueryPeakMB)
	}
	if got, want := mib(c.Resources.Limits.Memory()), int64(benchQueryPeakMB+concurrentArgon2*argon2PerLoginMiB); got < want {
		t.Errorf("api: memory limit %d MiB is below query load plus %d concurrent argon2id logins (%d MiB)", got, concurrentArgon2, want)
	}
	if api.Spec.Replicas == nil || *api.Spec.Replicas < 2 {
		t.Errorf("api: want at least 2 replicas")
	}
	if ru := api.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("api: a rolling update must keep every replica serving (maxUnavailable: 0)")
	}
	podLabels := labels.Set(api.Spec.Template.Labels)
	svc := m.services["ispgraph-api"]
	if svc == nil {
		t.Fatal("no Service ispgraph-api")
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
		t.Errorf("Service selector %v does not match the API pods", svc.Spec.Selector)
	}
	for _, p := range svc.Spec.Ports {
		if _, ok := ports[p.TargetPort.String()]; !ok {
			t.Errorf("Service port %s targets %q, not a declared container port", p.Name, p.TargetPort.String())
		}
	}
	pdb := m.pdbs["ispgraph-api"]
	if pdb == nil {
		t.Fatal("no PodDisruptionBudget ispgraph-api")
	}
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || !sel.Matches(podLabels) {
		t.Errorf("PodDisruptionBudget selector does not match the API pods: %v", err)
	}
	workerSel, _ := metav1.LabelSelectorAsSelector(worker.Spec.Selector)
	if workerSel.Matches(podLabels) {
		t.Error("the worker selector also matches API pods")
	}
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 1 || pdb.Spec.MinAvailable.IntValue() >= int(*api.Spec.Replicas) {
		t.Errorf("PodDisruptionBudget minAvailable %v must be at least 1 and below the %d replicas, or no node could be drained", pdb.Spec.MinAvailable, *api.Spec.Replicas)
	}
	if job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever && job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		t.Errorf("migrate Job restartPolicy %q", job.Spec.Template.Spec.RestartPolicy)
	}

	// kustomization.yaml lists exactly the manifests.
	var kust struct {
		Resources []string `json:"resources"`
	}
	raw, err := os.ReadFile(filepath.Join(repoRoot, kubernetesManifest, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &kust); err != nil {
		t.Fatal(err)
	}
	slices.Sort(kust.Resources)
	slices.Sort(m.files)
	if !slices.Equal(kust.Resources, m.files) {
		t.Errorf("kustomization.yaml resources %v, manifests %v", kust.Resources, m.files)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func itoa(n int32) string { return resource.NewQuantity(int64(n), resource.DecimalSI).String() }
