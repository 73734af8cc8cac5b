package tests

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// Static checks of deploy/: they need no container engine. The compose
// file and the Kubernetes manifests are parsed with a YAML parser and
// checked against what lilyd really serves (its flags, from lilyd -help;
// its probes and ports, asked of a running lilyd); the nginx configuration
// (the template shared by deploy/local and deploy/docker) passes nginx -t.

// repoPath returns a path of the repository (the tests run in tests/).
func repoPath(parts ...string) string {
	return filepath.Join(append([]string{".."}, parts...)...)
}

// lilydFlags returns the flags lilyd -help lists, without the dash.
func lilydFlags(tb testing.TB) []string {
	tb.Helper()
	out, err := exec.Command(lilydBin, "-help").CombinedOutput()
	if err != nil {
		tb.Fatalf("lilyd -help: %v\n%s", err, out)
	}
	var flags []string
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		flags = append(flags, m[1])
	}
	if len(flags) < 20 || !slices.Contains(flags, "listen") || !slices.Contains(flags, "seeds") {
		tb.Fatalf("lilyd -help lists %d flags %v: the parser no longer understands it\n%s", len(flags), flags, out)
	}
	return flags
}

// lilydEnvNames returns the LILY_* variables lilyd reads (one per flag,
// cmd/lilyd/config.go's envName).
func lilydEnvNames(tb testing.TB) map[string]bool {
	tb.Helper()
	names := map[string]bool{}
	for _, f := range lilydFlags(tb) {
		names["LILY_"+strings.ToUpper(strings.ReplaceAll(f, "-", "_"))] = true
	}
	return names
}

// checkLilydEnv fails the test for every LILY_* name lilyd does not read.
func checkLilydEnv(tb testing.TB, where string, env map[string]string) {
	tb.Helper()
	known := lilydEnvNames(tb)
	for name := range env {
		if !known[name] {
			tb.Errorf("%s sets %s, which is not one of lilyd's variables (lilyd -help)", where, name)
		}
	}
}

// nginxBin returns Debian's nginx, and fails the test when it is missing.
func nginxBin(tb testing.TB) string {
	tb.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	tb.Fatal("nginx is not installed: tests/run installs Debian's nginx package (apt-get install nginx)")
	return ""
}

// portOf returns the port of a listen address such as ":8080".
func portOf(tb testing.TB, addr string) int {
	tb.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		tb.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		tb.Fatalf("address %q: %v", addr, err)
	}
	return n
}

// Every flag of lilyd is in the README's configuration table with its
// environment variable.
func TestDeployEveryFlagIsDocumented(t *testing.T) {
	readme, err := os.ReadFile(repoPath("README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range lilydFlags(t) {
		env := "LILY_" + strings.ToUpper(strings.ReplaceAll(f, "-", "_"))
		row := fmt.Sprintf("| `-%s` | `%s` |", f, env)
		if !bytes.Contains(readme, []byte(row)) {
			t.Errorf("README's configuration table has no row %q", row)
		}
	}
}

// The compose file parses and names what lilyd serves: three nodes of
// one cluster on a shared PostgreSQL journal, seeded by a DNS name that
// resolves to all of them, nginx in front with the shared template.
func TestDeployComposeFile(t *testing.T) {
	data, err := os.ReadFile(repoPath("deploy", "docker", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	type network struct {
		IPv4    string   `yaml:"ipv4_address"`
		Aliases []string `yaml:"aliases"`
	}
	type service struct {
		Image string `yaml:"image"`
		Build struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		Environment map[string]string   `yaml:"environment"`
		Ports       []string            `yaml:"ports"`
		Volumes     []string            `yaml:"volumes"`
		Networks    map[string]*network `yaml:"networks"`
		DependsOn   map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		StopGracePeriod string `yaml:"stop_grace_period"`
		Healthcheck     struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	}
	var compose struct {
		Services map[string]service `yaml:"services"`
		Networks map[string]struct {
			IPAM struct {
				Config []struct {
					Subnet string `yaml:"subnet"`
				} `yaml:"config"`
			} `yaml:"ipam"`
		} `yaml:"networks"`
	}
	if err := yaml.Unmarshal(data, &compose); err != nil {
		t.Fatalf("compose.yaml does not parse: %v", err)
	}
	composeDir := repoPath("deploy", "docker")
	nodes := []string{"node1", "node2", "node3"}
	for _, name := range append(slices.Clone(nodes), "postgres", "nginx") {
		if _, ok := compose.Services[name]; !ok {
			t.Fatalf("compose.yaml has no service %q (services: %v)", name, sortedKeys(compose.Services))
		}
	}
	if len(compose.Services) != 5 {
		t.Errorf("compose.yaml has services %v, want the 3 nodes, postgres and nginx", sortedKeys(compose.Services))
	}
	var subnet *net.IPNet
	if cfg := compose.Networks["lily"].IPAM.Config; len(cfg) == 1 {
		_, subnet, _ = net.ParseCIDR(cfg[0].Subnet)
	}
	if subnet == nil {
		t.Fatalf("network lily has no subnet: %+v", compose.Networks)
	}

	// The nodes: one cluster, shared journal, seeds, ports.
	aliasMembers := map[string][]string{} // DNS name -> nodes it resolves to
	upstreamWant := []string{}
	var listenPort, gossipPort int
	for _, name := range nodes {
		s := compose.Services[name]
		env := s.Environment
		checkLilydEnv(t, "compose service "+name, env)
		if s.Build.Dockerfile != "deploy/docker/Dockerfile" {
			t.Errorf("%s: dockerfile %q", name, s.Build.Dockerfile)
		}
		if _, err := os.Stat(filepath.Join(composeDir, s.Build.Context, s.Build.Dockerfile)); err != nil {
			t.Errorf("%s: the build's Dockerfile is missing: %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(composeDir, s.Build.Context, "go.mod")); err != nil {
			t.Errorf("%s: the build context is not the repository's root: %v", name, err)
		}
		if env["LILY_CLUSTER_NAME"] == "" || env["LILY_CLUSTER_NAME"] != compose.Services["node1"].Environment["LILY_CLUSTER_NAME"] {
			t.Errorf("%s: cluster name %q, want the same non-empty name on every node", name, env["LILY_CLUSTER_NAME"])
		}
		if j := env["LILY_JOURNAL"]; !strings.HasPrefix(j, "postgres://") || !strings.Contains(j, "@postgres:5432/") {
			t.Errorf("%s: journal %q, want the postgres service's URL", name, j)
		}
		listenPort = portOf(t, env["LILY_LISTEN"])
		gossipPort, _ = strconv.Atoi(env["LILY_GOSSIP_PORT"])
		if gossipPort == 0 || env["LILY_REMOTE_PORT"] == "" {
			t.Errorf("%s: gossip port %q, remote port %q", name, env["LILY_GOSSIP_PORT"], env["LILY_REMOTE_PORT"])
		}
		nw := s.Networks["lily"]
		if nw == nil || net.ParseIP(nw.IPv4) == nil || !subnet.Contains(net.ParseIP(nw.IPv4)) {
			t.Fatalf("%s: no fixed address in %v on network lily: %+v", name, subnet, nw)
		}
		if env["LILY_BIND"] != nw.IPv4 {
			t.Errorf("%s: LILY_BIND %q is not its address %s (peers reach it there)", name, env["LILY_BIND"], nw.IPv4)
		}
		aliasMembers[name] = append(aliasMembers[name], name)
		for _, a := range nw.Aliases {
			aliasMembers[a] = append(aliasMembers[a], name)
		}
		if s.DependsOn["postgres"].Condition != "service_healthy" {
			t.Errorf("%s: does not wait for a healthy postgres", name)
		}
		grace, err1 := time.ParseDuration(s.StopGracePeriod)
		drain, err2 := time.ParseDuration(env["LILY_SHUTDOWN_TIMEOUT"])
		if err1 != nil || err2 != nil || grace <= drain {
			t.Errorf("%s: stop_grace_period %q must exceed LILY_SHUTDOWN_TIMEOUT %q", name, s.StopGracePeriod, env["LILY_SHUTDOWN_TIMEOUT"])
		}
		upstreamWant = append(upstreamWant, fmt.Sprintf("server %s:%d ", name, listenPort))
	}
	for _, name := range nodes {
		for _, seed := range strings.Split(compose.Services[name].Environment["LILY_SEEDS"], ",") {
			host, port, err := net.SplitHostPort(strings.TrimSpace(seed))
			if err != nil || port != strconv.Itoa(gossipPort) {
				t.Errorf("%s: seed %q is not NAME:%d", name, seed, gossipPort)
				continue
			}
			if got := aliasMembers[host]; len(got) != len(nodes) {
				t.Errorf("%s: seed name %q resolves to %v, want every node (a shared network alias)", name, host, got)
			}
		}
	}

	// nginx: the shared template, the nodes as upstream, a published port.
	ng := compose.Services["nginx"]
	const mount = "../nginx/lily.conf.template:/etc/nginx/templates/lily.conf.template:ro"
	if !slices.Contains(ng.Volumes, mount) {
		t.Errorf("nginx volumes %v, want %q", ng.Volumes, mount)
	}
	if _, err := os.Stat(filepath.Join(composeDir, "../nginx/lily.conf.template")); err != nil {
		t.Errorf("nginx mounts a missing template: %v", err)
	}
	lbPort := ng.Environment["LILY_NGINX_LISTEN"]
	if len(ng.Ports) != 1 || !strings.HasSuffix(ng.Ports[0], ":"+lbPort) {
		t.Errorf("nginx publishes %v, want its LILY_NGINX_LISTEN port %s", ng.Ports, lbPort)
	}
	upstream := ng.Environment["LILY_NGINX_UPSTREAM"]
	for _, want := range upstreamWant {
		if !strings.Contains(upstream, want) {
			t.Errorf("nginx upstream %q has no %q", upstream, want)
		}
	}
	if strings.Count(upstream, "max_fails=") != len(nodes) {
		t.Errorf("nginx upstream %q: every node needs max_fails (passive health)", upstream)
	}
	for _, n := range nodes {
		if ng.DependsOn[n].Condition != "service_healthy" {
			t.Errorf("nginx does not wait for %s to be healthy", n)
		}
	}
	if pg := compose.Services["postgres"]; !strings.HasPrefix(pg.Image, "postgres:") || !slices.Contains(pg.Healthcheck.Test, "pg_isready") {
		t.Errorf("postgres: image %q, health check %v", pg.Image, pg.Healthcheck.Test)
	}
}

// The Dockerfile builds a static lilyd in a Go image and runs it as a
// non-root user in a small image, with lilyd's own probe as its health
// check; that probe command works against a real lilyd.
func TestDeployDockerfile(t *testing.T) {
	data, err := os.ReadFile(repoPath("deploy", "docker", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines, drop comments.
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	var froms []string
	var final struct{ user, entrypoint, healthcheck, expose string }
	env := map[string]string{}
	built := false
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			froms = append(froms, rest)
		case "RUN":
			if strings.Contains(rest, "CGO_ENABLED=0") && strings.Contains(rest, "go build") && strings.Contains(rest, "./cmd/lilyd") {
				built = true
			}
		case "USER":
			final.user = rest
		case "ENTRYPOINT":
			final.entrypoint = rest
		case "HEALTHCHECK":
			final.healthcheck = rest
		case "EXPOSE":
			final.expose = rest
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				if k, v, ok := strings.Cut(kv, "="); ok {
					env[k] = v
				}
			}
		}
	}
	gomod, _ := os.ReadFile(repoPath("go.mod"))
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if len(froms) != 2 || goVersion == nil || froms[0] != "golang:"+string(goVersion[1])+" AS build" {
		t.Errorf("stages %q: want golang:%s AS build, then the final image", froms, goVersion)
	}
	if len(froms) == 2 && !strings.HasPrefix(froms[1], "gcr.io/distroless/static") && froms[1] != "scratch" {
		t.Errorf("final image %q: want distroless static or scratch", froms[len(froms)-1])
	}
	if !built {
		t.Error("no RUN CGO_ENABLED=0 go build ... ./cmd/lilyd")
	}
	if final.user == "" || strings.HasPrefix(final.user, "root") || strings.HasPrefix(final.user, "0") {
		t.Errorf("USER %q: want a non-root user", final.user)
	}
	if final.entrypoint != `["/lilyd"]` {
		t.Errorf("ENTRYPOINT %q", final.entrypoint)
	}
	checkLilydEnv(t, "the Dockerfile", env)
	port := portOf(t, env["LILY_LISTEN"])
	for _, p := range []string{strconv.Itoa(port), "7946/tcp", "7946/udp", "8090"} {
		if !slices.Contains(strings.Fields(final.expose), p) {
			t.Errorf("EXPOSE %q lacks %s", final.expose, p)
		}
	}
	m := regexp.MustCompile(`CMD \["/lilyd", "-probe", "([^"]+)"\]`).FindStringSubmatch(final.healthcheck)
	if m == nil {
		t.Fatalf("HEALTHCHECK %q: want CMD [\"/lilyd\", \"-probe\", PATH]", final.healthcheck)
	}

	// The same probe against a real lilyd, found through LILY_LISTEN as in
	// the image: 0 while it serves, 1 once it is gone.
	addr := freeAddr(t)
	node := startLilyd(t, addr)
	probe := func() int {
		cmd := exec.Command(lilydBin, "-probe", m[1])
		cmd.Env = append(os.Environ(), "LILY_LISTEN="+addr)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		} else if err != nil {
			t.Fatalf("lilyd -probe: %v\n%s", err, out)
		}
		return 0
	}
	if code := probe(); code != 0 {
		t.Fatalf("lilyd -probe %s against a serving node: exit %d", m[1], code)
	}
	node.stop()
	if code := probe(); code != 1 {
		t.Fatalf("lilyd -probe %s against a stopped node: exit %d, want 1", m[1], code)
	}
}

// k8sObject is the part of a Kubernetes object the checks read.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Resources  []string          `yaml:"resources"` // Kustomization
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		// Service
		ClusterIP                string            `yaml:"clusterIP"`
		PublishNotReadyAddresses bool              `yaml:"publishNotReadyAddresses"`
		Selector                 yaml.Node         `yaml:"selector"`
		Ports                    []k8sServicePort  `yaml:"ports"`
		MaxUnavailable           any               `yaml:"maxUnavailable"`
		ServiceName              string            `yaml:"serviceName"`
		Replicas                 int               `yaml:"replicas"`
		Template                 k8sPodTemplate    `yaml:"template"`
		UpdateStrategy           map[string]string `yaml:"updateStrategy"`
	} `yaml:"spec"`
}

type k8sServicePort struct {
	Name       string `yaml:"name"`
	Port       int    `yaml:"port"`
	TargetPort any    `yaml:"targetPort"`
	Protocol   string `yaml:"protocol"`
}

type k8sProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sPodTemplate struct {
	Metadata struct {
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
		Containers                    []struct {
			Name  string `yaml:"name"`
			Image string `yaml:"image"`
			Ports []struct {
				Name          string `yaml:"name"`
				ContainerPort int    `yaml:"containerPort"`
				Protocol      string `yaml:"protocol"`
			} `yaml:"ports"`
			Env []struct {
				Name      string `yaml:"name"`
				Value     string `yaml:"value"`
				ValueFrom struct {
					FieldRef struct {
						FieldPath string `yaml:"fieldPath"`
					} `yaml:"fieldRef"`
					SecretKeyRef struct {
						Name string `yaml:"name"`
						Key  string `yaml:"key"`
					} `yaml:"secretKeyRef"`
				} `yaml:"valueFrom"`
			} `yaml:"env"`
			ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
			LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
			StartupProbe   *k8sProbe `yaml:"startupProbe"`
			Lifecycle      struct {
				PreStop struct {
					Sleep struct {
						Seconds int `yaml:"seconds"`
					} `yaml:"sleep"`
				} `yaml:"preStop"`
			} `yaml:"lifecycle"`
			Resources struct {
				Requests map[string]string `yaml:"requests"`
			} `yaml:"resources"`
		} `yaml:"containers"`
	} `yaml:"spec"`
}

// readK8s parses every document of every YAML file in deploy/k8s.
func readK8s(tb testing.TB) map[string][]k8sObject {
	tb.Helper()
	files, _ := filepath.Glob(repoPath("deploy", "k8s", "*.yaml"))
	if len(files) == 0 {
		tb.Fatal("deploy/k8s has no manifests")
	}
	out := map[string][]k8sObject{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var o k8sObject
			if err := dec.Decode(&o); err != nil {
				if err.Error() == "EOF" {
					break
				}
				tb.Fatalf("%s does not parse: %v", f, err)
			}
			if o.Kind == "" || o.APIVersion == "" {
				tb.Fatalf("%s: a document without kind or apiVersion", f)
			}
			out[filepath.Base(f)] = append(out[filepath.Base(f)], o)
		}
	}
	return out
}

// The Kubernetes manifests parse and agree with each other and with
// lilyd: the env names are lilyd's, the ports are the ones it is told to
// serve, the probes' paths answer 200 on a real lilyd, termination waits
// for the drain, and the seeds are the headless Service's DNS name.
func TestDeployKubernetesManifests(t *testing.T) {
	byFile := readK8s(t)
	all := map[string]k8sObject{} // "Kind/name"
	for _, objs := range byFile {
		for _, o := range objs {
			all[o.Kind+"/"+o.Metadata.Name] = o
		}
	}
	// kustomization.yaml applies every manifest but the example Secret.
	kust, ok := all["Kustomization/"]
	if !ok {
		t.Fatal("deploy/k8s has no kustomization.yaml")
	}
	for file := range byFile {
		listed := slices.Contains(kust.Resources, file)
		if want := file != "kustomization.yaml" && !strings.Contains(file, "example"); listed != want {
			t.Errorf("kustomization.yaml: %s listed %v, want %v", file, listed, want)
		}
	}

	sts, ok := all["StatefulSet/lily"]
	if !ok {
		t.Fatalf("no StatefulSet lily among %v", sortedKeys(all))
	}
	if sts.Spec.Replicas < 3 || sts.Spec.UpdateStrategy["type"] != "RollingUpdate" {
		t.Errorf("StatefulSet: %d replicas, update %v", sts.Spec.Replicas, sts.Spec.UpdateStrategy)
	}
	pod := sts.Spec.Template
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want lilyd only", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	checkLilydEnv(t, "the StatefulSet", env)
	ports := map[string]int{} // name -> container port
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	httpPort := portOf(t, env["LILY_LISTEN"])
	if ports["http"] != httpPort {
		t.Errorf("container port http %d, but LILY_LISTEN %q", ports["http"], env["LILY_LISTEN"])
	}
	gossip, _ := strconv.Atoi(env["LILY_GOSSIP_PORT"])
	remote, _ := strconv.Atoi(env["LILY_REMOTE_PORT"])
	if gossip == 0 || ports["gossip"] != gossip || ports["gossip-udp"] != gossip || ports["remote"] != remote {
		t.Errorf("container ports %v, but LILY_GOSSIP_PORT %d and LILY_REMOTE_PORT %d (memberlist needs TCP and UDP)", ports, gossip, remote)
	}
	for _, e := range c.Env {
		switch e.Name {
		case "LILY_BIND":
			if e.ValueFrom.FieldRef.FieldPath != "status.podIP" {
				t.Errorf("LILY_BIND from %q, want the pod's IP", e.ValueFrom.FieldRef.FieldPath)
			}
		case "LILY_JOURNAL":
			ref := e.ValueFrom.SecretKeyRef
			secret, ok := all["Secret/"+ref.Name]
			if ref.Name == "" || !ok || !strings.HasPrefix(secret.StringData[ref.Key], "postgres://") {
				t.Errorf("LILY_JOURNAL from Secret %q key %q: want a postgres:// URL from the example Secret", ref.Name, ref.Key)
			}
		}
	}
	if env["LILY_CLUSTER_NAME"] == "" {
		t.Error("LILY_CLUSTER_NAME is not set")
	}

	// Probes: on the http port, at paths lilyd serves.
	probes := map[string]*k8sProbe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe %+v, want /readyz", c.ReadinessProbe)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("liveness probe %+v, want /healthz", c.LivenessProbe)
	}
	node := startLilyd(t, freeAddr(t))
	for kind, p := range probes {
		if p == nil {
			continue
		}
		if p.HTTPGet.Port != "http" && p.HTTPGet.Port != httpPort {
			t.Errorf("%s probe on port %v, want http (%d)", kind, p.HTTPGet.Port, httpPort)
		}
		resp, err := http.Get("http://" + node.addr + p.HTTPGet.Path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s probe: GET %s answers %s on a running lilyd", kind, p.HTTPGet.Path, resp.Status)
		}
	}

	// Termination: preStop + lilyd's drain fit in the grace period.
	drain, err := time.ParseDuration(env["LILY_SHUTDOWN_TIMEOUT"])
	if err != nil {
		t.Fatalf("LILY_SHUTDOWN_TIMEOUT %q: %v", env["LILY_SHUTDOWN_TIMEOUT"], err)
	}
	preStop := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	grace := time.Duration(pod.Spec.TerminationGracePeriodSeconds) * time.Second
	if preStop == 0 || grace <= preStop+drain {
		t.Errorf("terminationGracePeriodSeconds %v must exceed preStop %v + LILY_SHUTDOWN_TIMEOUT %v", grace, preStop, drain)
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" {
		t.Errorf("resource requests %v, want cpu and memory", c.Resources.Requests)
	}

	// Services: the headless one is the seeds' DNS name; both select the pods.
	podLabels := pod.Metadata.Labels
	// selects: a Service's selector (labels) or a PDB's (matchLabels)
	// picks the pods.
	selects := func(sel yaml.Node) bool {
		var m map[string]any
		if err := sel.Decode(&m); err != nil {
			return false
		}
		if inner, ok := m["matchLabels"].(map[string]any); ok {
			m = inner
		}
		if len(m) == 0 {
			return false
		}
		for k, v := range m {
			if podLabels[k] != fmt.Sprint(v) {
				return false
			}
		}
		return true
	}
	headless, ok := all["Service/"+sts.Spec.ServiceName]
	if !ok || headless.Spec.ClusterIP != "None" || !headless.Spec.PublishNotReadyAddresses || !selects(headless.Spec.Selector) {
		t.Errorf("the StatefulSet's service %q: want a headless Service (clusterIP None, publishNotReadyAddresses) selecting the pods, got %+v", sts.Spec.ServiceName, headless.Spec)
	}
	seedHost, seedPort, err := net.SplitHostPort(env["LILY_SEEDS"])
	if err != nil || seedHost != headless.Metadata.Name || seedPort != strconv.Itoa(gossip) {
		t.Errorf("LILY_SEEDS %q, want %s:%d (the headless Service's name)", env["LILY_SEEDS"], headless.Metadata.Name, gossip)
	}
	for _, p := range headless.Spec.Ports {
		if _, ok := ports[fmt.Sprint(p.TargetPort)]; !ok || ports[fmt.Sprint(p.TargetPort)] != p.Port {
			t.Errorf("headless Service port %+v: no such container port", p)
		}
	}
	client, ok := all["Service/lily"]
	if !ok || client.Spec.ClusterIP == "None" || !selects(client.Spec.Selector) || len(client.Spec.Ports) != 1 || client.Spec.Ports[0].TargetPort != "http" {
		t.Errorf("client Service lily: want a ClusterIP Service to the pods' http port, got %+v", client.Spec)
	}
	pdb, ok := all["PodDisruptionBudget/lily"]
	if !ok || !selects(pdb.Spec.Selector) || pdb.Spec.MaxUnavailable != 1 {
		t.Errorf("PodDisruptionBudget lily: want maxUnavailable 1 over the pods, got %+v", pdb.Spec)
	}
}

// The nginx template shared by deploy/local and deploy/docker passes
// nginx -t, rendered both ways: by deploy/local/nginx-conf, and as the
// nginx image renders it from compose.yaml's variables (envsubst).
func TestDeployNginxConfig(t *testing.T) {
	nginx := nginxBin(t)
	nginxT := func(prefix, conf string) {
		t.Helper()
		out, err := exec.Command(nginx, "-t", "-p", prefix, "-e", filepath.Join(prefix, "error.log"), "-c", conf).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "test is successful") {
			body, _ := os.ReadFile(conf)
			t.Fatalf("nginx -t %s: %v\n%s\n%s", conf, err, out, body)
		}
	}
	template, err := os.ReadFile(repoPath("deploy", "nginx", "lily.conf.template"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"least_conn;", "proxy_set_header Upgrade $http_upgrade;", "proxy_http_version 1.1;", "proxy_next_upstream error", "proxy_read_timeout 1h;"} {
		if !strings.Contains(string(template), want) {
			t.Errorf("the template lacks %q", want)
		}
	}

	t.Run("local", func(t *testing.T) {
		state := t.TempDir()
		out, err := exec.Command(repoPath("deploy", "local", "nginx-conf"), state, freePort(t), "127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083").CombinedOutput()
		if err != nil {
			t.Fatalf("nginx-conf: %v\n%s", err, out)
		}
		conf := strings.TrimSpace(string(out))
		lily, _ := os.ReadFile(filepath.Join(state, "nginx", "lily.conf"))
		for _, node := range []string{"8081", "8082", "8083"} {
			if strings.Count(string(lily), "server 127.0.0.1:"+node+" max_fails=1") != 1 {
				t.Errorf("rendered lily.conf has not node %s once, with max_fails", node)
			}
		}
		if strings.Contains(string(lily), "${LILY_") {
			t.Errorf("rendered lily.conf has a placeholder left")
		}
		if t.Failed() {
			t.Fatalf("rendered lily.conf:\n%s", lily)
		}
		nginxT(filepath.Join(state, "nginx"), conf)
	})

	t.Run("compose", func(t *testing.T) {
		data, err := os.ReadFile(repoPath("deploy", "docker", "compose.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var compose struct {
			Services map[string]struct {
				Environment map[string]string `yaml:"environment"`
			} `yaml:"services"`
		}
		if err := yaml.Unmarshal(data, &compose); err != nil {
			t.Fatal(err)
		}
		// envsubst as the image runs it: only the variables defined.
		conf := string(template)
		for k, v := range compose.Services["nginx"].Environment {
			conf = strings.ReplaceAll(conf, "${"+k+"}", v)
			conf = regexp.MustCompile(`\$`+k+`\b`).ReplaceAllLiteralString(conf, v)
		}
		if strings.Contains(conf, "${LILY_") {
			t.Fatalf("compose leaves a placeholder unfilled:\n%s", conf)
		}
		// The nodes' names resolve only inside compose's network: point
		// them at this machine for the syntax check.
		for name := range compose.Services {
			conf = strings.ReplaceAll(conf, "server "+name+":", "server 127.0.0.1:")
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "lily.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		// The listen port of compose is fixed (8080): nginx -t does not bind.
		main := fmt.Sprintf("pid %[1]s/nginx.pid;\nevents {}\nhttp {\n  client_body_temp_path %[1]s/tmp;\n  proxy_temp_path %[1]s/tmp;\n  include %[1]s/lily.conf;\n}\n", dir)
		if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o644); err != nil {
			t.Fatal(err)
		}
		nginxT(dir, filepath.Join(dir, "nginx.conf"))
	})
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
