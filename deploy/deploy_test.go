// Package deploy_test validates everything under deploy/ offline:
//
//   - every Kubernetes / Prometheus Operator object (raw manifests always; kustomize and Helm
//     output when deploy/check.sh rendered them) decodes STRICTLY into the k8s.io/api and
//     prometheus-operator Go types: an unknown or misspelt field is an error;
//   - the pod shape: tollgate as a native sidecar, probes on the named ops port, restricted Pod
//     Security, the data dir on a size-limited emptyDir, config from a ConfigMap directory,
//     Stripe credentials from a Secret, a grace period longer than --shutdown-timeout; the
//     Service/Ingress expose the webhook port only; the NetworkPolicy admits webhook and ops
//     traffic only; the PodMonitor scrapes the ops port by name;
//   - the alert rules parse, follow the naming conventions, use only exported metrics, and are
//     identical in the plain rules file, the PrometheusRule and the Helm chart;
//   - every PromQL expression of the Grafana dashboard parses and uses only exported metrics
//     (metrics/README.md's contract table), and the dashboard hard-codes no datasource.
//
// The checks of rendered output (rendered_test.go, build tag deployrender) read the files that
// deploy/check.sh renders and names in TOLLGATE_KUSTOMIZE_OUT, TOLLGATE_HELM_OUT,
// TOLLGATE_HELM_FULL_OUT and TOLLGATE_HELM_PARENT_OUT; a plain `go test ./...` runs every
// other check.
package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	promlabels "github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-pdp/tollgate"
)

// ---------------------------------------------------------------------------------------------
// Strict decoding

// object is one decoded manifest: where it came from and its typed value.
type object struct {
	src  string // file (and document index)
	kind string // apiVersion/kind
	name string
	obj  any
}

// kinds maps apiVersion/kind to a constructor of its Go type. Anything else is an error:
// the deploy tree ships nothing the tests cannot decode.
var kinds = map[string]func() any{
	"apps/v1/Deployment":                  func() any { return &appsv1.Deployment{} },
	"v1/Service":                          func() any { return &corev1.Service{} },
	"v1/ConfigMap":                        func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                           func() any { return &corev1.Secret{} },
	"v1/ServiceAccount":                   func() any { return &corev1.ServiceAccount{} },
	"policy/v1/PodDisruptionBudget":       func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/Ingress":        func() any { return &networkingv1.Ingress{} },
	"networking.k8s.io/v1/NetworkPolicy":  func() any { return &networkingv1.NetworkPolicy{} },
	"monitoring.coreos.com/v1/PodMonitor": func() any { return &monitoringv1.PodMonitor{} },
	"monitoring.coreos.com/v1/PrometheusRule": func() any {
		return &monitoringv1.PrometheusRule{}
	},
}

var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// splitDocs splits a multi-document YAML stream, dropping documents with no content.
func splitDocs(b []byte) [][]byte {
	var out [][]byte
	for _, d := range docSep.Split(string(b), -1) {
		if hasContent(d) {
			out = append(out, []byte(d))
		}
	}
	return out
}

func hasContent(doc string) bool {
	sc := bufio.NewScanner(strings.NewReader(doc))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l != "" && !strings.HasPrefix(l, "#") {
			return true
		}
	}
	return false
}

// decodeStrict decodes YAML into v, refusing unknown fields and duplicate keys.
func decodeStrict(doc []byte, v any) error {
	return yaml.UnmarshalStrict(doc, v)
}

// decodeStream decodes every document of a YAML stream into its registered type.
func decodeStream(t *testing.T, src string, b []byte) []object {
	t.Helper()
	var out []object
	for i, doc := range splitDocs(b) {
		where := fmt.Sprintf("%s#%d", src, i)
		var tm struct {
			metav1.TypeMeta `json:",inline"`
			Metadata        struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Errorf("%s: not YAML: %v", where, err)
			continue
		}
		key := tm.APIVersion + "/" + tm.Kind
		mk, ok := kinds[key]
		if !ok {
			t.Errorf("%s: %s %q: no Go type registered for this kind (add it to kinds)", where, key, tm.Metadata.Name)
			continue
		}
		v := mk()
		if err := decodeStrict(doc, v); err != nil {
			t.Errorf("%s: %s %q does not decode strictly: %v", where, key, tm.Metadata.Name, err)
			continue
		}
		out = append(out, object{src: where, kind: key, name: tm.Metadata.Name, obj: v})
	}
	return out
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return b
}

// ---------------------------------------------------------------------------------------------
// Bundles: the objects of one deployment, and the checks every way of deploying must pass.

type bundle []object

func (b bundle) all(kind string) []object {
	var out []object
	for _, o := range b {
		if o.kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func (b bundle) find(kind, name string) *object {
	for i := range b {
		if b[i].kind == kind && b[i].name == name {
			return &b[i]
		}
	}
	return nil
}

type expect struct {
	sidecar        bool // tollgate must be a native sidecar beside an app container
	stripeSecret   bool // Stripe credentials must be wired from a Secret
	secretInBundle bool // ... and that Secret is part of the bundle
	configMap      bool // the config ConfigMap is part of the bundle
	ingress        bool
	podMonitor     bool
	prometheusRule bool
	networkPolicy  bool
	fleet          bool // fleet mode: the NATS settings must be set (else they must not be)
	poller         bool // fleet mode: the bundle holds the fleet's one poller (it alone has the API key)
}

const (
	webhookPort = 8182
	opsPort     = 9181
	apiPort     = 8181
)

// checkBundle runs every structural check on a bundle of decoded objects.
func checkBundle(t *testing.T, b bundle, want expect) {
	t.Helper()
	deps := b.all("apps/v1/Deployment")
	if len(deps) == 0 {
		t.Fatalf("no Deployment")
	}
	var pods []podInfo
	pollers := 0
	for _, o := range deps {
		d := o.obj.(*appsv1.Deployment)
		p, ok := checkPod(t, b, o.src+" Deployment "+d.Name, &d.Spec.Template, want)
		if ok {
			pods = append(pods, p)
			if p.poller {
				if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
					t.Errorf("Deployment %s: the fleet's poller must have exactly 1 replica", d.Name)
				}
				pollers++
			}
		}
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("Deployment %s: selector does not match its pod template labels (%v)", d.Name, err)
		}
	}
	if len(pods) == 0 {
		t.Fatalf("no Deployment runs a container named tollgate")
	}
	if want.fleet && pollers != btoi(want.poller) {
		t.Errorf("fleet mode: %d Deployment(s) of tollgate with the Stripe API key, want %d: one poller serves the fleet", pollers, btoi(want.poller))
	}
	checkService(t, b, pods)
	checkIngress(t, b, want.ingress)
	checkNetworkPolicy(t, b, pods, want.networkPolicy)
	checkPodMonitor(t, b, pods, want.podMonitor)
	checkPrometheusRule(t, b, want.prometheusRule)
}

type podInfo struct {
	labels map[string]string
	poller bool // a fleet sidecar holding the Stripe API key
}

// checkPod checks one pod template that runs tollgate; ok is false if it runs none.
func checkPod(t *testing.T, b bundle, where string, tpl *corev1.PodTemplateSpec, want expect) (podInfo, bool) {
	t.Helper()
	spec := &tpl.Spec
	var tg *corev1.Container
	inInit := false
	for i := range spec.InitContainers {
		if spec.InitContainers[i].Name == "tollgate" {
			tg, inInit = &spec.InitContainers[i], true
		}
	}
	for i := range spec.Containers {
		if spec.Containers[i].Name == "tollgate" {
			if tg != nil {
				t.Errorf("%s: tollgate is both an init container and a container", where)
			}
			tg = &spec.Containers[i]
		}
	}
	if tg == nil {
		return podInfo{}, false
	}
	podWhere := where
	where += " container tollgate"

	// Native sidecar: beside an app, tollgate is a restartable init container.
	others := 0
	for _, c := range spec.Containers {
		if c.Name != "tollgate" {
			others++
		}
	}
	switch {
	case inInit:
		if tg.RestartPolicy == nil || *tg.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			t.Errorf("%s: an initContainers entry must have restartPolicy: Always (native sidecar)", where)
		}
		if others == 0 {
			t.Errorf("%s: a native sidecar with no app container", where)
		}
	case others > 0:
		t.Errorf("%s: beside an app it must be a native sidecar (initContainers + restartPolicy: Always), not a plain container", where)
	}
	if want.sidecar && !inInit {
		t.Errorf("%s: expected a native sidecar (initContainers entry)", where)
	}

	// Ports by name; the decision API is loopback and never declared.
	ports := map[string]int32{}
	for _, p := range tg.Ports {
		ports[p.Name] = p.ContainerPort
		if p.ContainerPort == apiPort {
			t.Errorf("%s: declares the loopback decision API port %d", where, apiPort)
		}
	}
	if got := ports["webhook"]; got != int32(listenPort(tg, "webhook-listen", webhookPort)) {
		t.Errorf("%s: port named webhook is %d, want the --webhook-listen port %d", where, got, listenPort(tg, "webhook-listen", webhookPort))
	}
	if got := ports["ops"]; got != int32(listenPort(tg, "ops-listen", opsPort)) {
		t.Errorf("%s: port named ops is %d, want the --ops-listen port %d", where, got, listenPort(tg, "ops-listen", opsPort))
	}
	if v, ok := flagValue(tg, "listen"); ok && !strings.HasPrefix(v, "127.0.0.1:") && !strings.HasPrefix(v, "localhost:") {
		t.Errorf("%s: --listen %q is not loopback", where, v)
	}

	// Probes: all on the ops port by name.
	checkProbe(t, where+" startupProbe", tg.StartupProbe, "/health/ready")
	checkProbe(t, where+" readinessProbe", tg.ReadinessProbe, "/health/ready")
	checkProbe(t, where+" livenessProbe", tg.LivenessProbe, "/health/live")

	// Restricted Pod Security for every container of the pod.
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Errorf("%s: host namespaces are not allowed", where)
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		checkRestricted(t, podWhere+" container "+c.Name, spec.SecurityContext, c.SecurityContext)
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			t.Errorf("%s: hostPath volume %s", where, v.Name)
		}
	}

	// Volumes: the data dir on a size-limited emptyDir, config from a ConfigMap directory.
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
	}
	mountOf := func(path string) (corev1.VolumeMount, corev1.Volume, bool) {
		best := -1
		for i, m := range tg.VolumeMounts {
			mp := strings.TrimSuffix(m.MountPath, "/")
			if (path == mp || strings.HasPrefix(path, mp+"/")) && (best < 0 || len(mp) > len(tg.VolumeMounts[best].MountPath)) {
				best = i
			}
		}
		if best < 0 {
			return corev1.VolumeMount{}, corev1.Volume{}, false
		}
		m := tg.VolumeMounts[best]
		v, ok := vols[m.Name]
		return m, v, ok
	}
	for _, m := range tg.VolumeMounts {
		if m.SubPath != "" || m.SubPathExpr != "" {
			t.Errorf("%s: volumeMount %s uses subPath: ConfigMap updates would not propagate", where, m.Name)
		}
	}
	dataDir, ok := flagValue(tg, "data-dir")
	if !ok {
		t.Errorf("%s: no --data-dir (the default ./data is on the read-only root filesystem)", where)
	} else if m, v, ok := mountOf(dataDir); !ok || v.EmptyDir == nil {
		t.Errorf("%s: --data-dir %s is not on an emptyDir volume", where, dataDir)
	} else {
		if v.EmptyDir.SizeLimit == nil || v.EmptyDir.SizeLimit.Sign() <= 0 {
			t.Errorf("%s: data emptyDir %s has no sizeLimit", where, v.Name)
		}
		if m.ReadOnly {
			t.Errorf("%s: data volume mounted read-only", where)
		}
	}
	for _, flag := range []string{"policy-dir", "catalog"} {
		p, ok := flagValue(tg, flag)
		if !ok {
			if flag == "policy-dir" {
				t.Errorf("%s: no --policy-dir", where)
			}
			continue
		}
		m, v, ok := mountOf(p)
		if !ok || v.ConfigMap == nil {
			t.Errorf("%s: --%s %s is not on a ConfigMap volume", where, flag, p)
			continue
		}
		if !m.ReadOnly {
			t.Errorf("%s: ConfigMap volume %s should be mounted readOnly", where, m.Name)
		}
		if flag == "policy-dir" && strings.TrimSuffix(m.MountPath, "/") != strings.TrimSuffix(p, "/") {
			t.Errorf("%s: --policy-dir %s must be the ConfigMap mount point itself (%s) to see its ..data swaps", where, p, m.MountPath)
		}
		if want.configMap {
			o := b.find("v1/ConfigMap", v.ConfigMap.Name)
			if o == nil {
				t.Errorf("%s: ConfigMap %s is not in the bundle", where, v.ConfigMap.Name)
				continue
			}
			cm := o.obj.(*corev1.ConfigMap)
			if flag == "catalog" {
				key := filepath.Base(p)
				raw, ok := cm.Data[key]
				if !ok {
					t.Errorf("%s: --catalog %s: ConfigMap %s has no key %s", where, p, cm.Name, key)
				} else {
					checkCatalog(t, cm.Name+"/"+key, []byte(raw))
				}
			}
		}
	}

	// Stripe credentials come from a Secret, never inline.
	env := map[string]corev1.EnvVar{}
	for _, e := range tg.Env {
		env[e.Name] = e
	}
	for _, name := range []string{"TOLLGATE_STRIPE_WEBHOOK_SECRET", "TOLLGATE_STRIPE_API_KEY", "TOLLGATE_ADMIN_TOKEN"} {
		e, ok := env[name]
		if !ok {
			// In fleet mode only the poller has the API key, and it need not take webhooks.
			_, poller := env["TOLLGATE_STRIPE_API_KEY"]
			switch {
			case !want.stripeSecret, name == "TOLLGATE_ADMIN_TOKEN":
			case want.fleet && name == "TOLLGATE_STRIPE_API_KEY", want.fleet && poller:
			default:
				t.Errorf("%s: %s is not set", where, name)
			}
			continue
		}
		if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("%s: %s must come from a Secret (secretKeyRef), not a literal", where, name)
			continue
		}
		if want.secretInBundle {
			ref := e.ValueFrom.SecretKeyRef
			o := b.find("v1/Secret", ref.Name)
			if o == nil {
				t.Errorf("%s: %s: Secret %s not in the bundle", where, name, ref.Name)
				continue
			}
			s := o.obj.(*corev1.Secret)
			if _, ok := s.Data[ref.Key]; !ok {
				if _, ok := s.StringData[ref.Key]; !ok {
					t.Errorf("%s: %s: Secret %s has no key %s", where, name, ref.Name, ref.Key)
				}
			}
		}
	}
	for _, a := range tg.Args {
		for _, secret := range []string{"--stripe-webhook-secret", "--stripe-api-key", "--admin-token"} {
			if strings.HasPrefix(a, secret) {
				t.Errorf("%s: %s on the command line: use a Secret", where, secret)
			}
		}
	}

	poller := checkFleet(t, where, tg, env, mountOf, want)

	// Graceful shutdown fits in the grace period.
	timeout := 10 * time.Second
	if v, ok := flagValue(tg, "shutdown-timeout"); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Errorf("%s: --shutdown-timeout %q: %v", where, v, err)
		}
		timeout = d
	}
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if spec.TerminationGracePeriodSeconds != nil {
		grace = *spec.TerminationGracePeriodSeconds
	}
	if time.Duration(grace)*time.Second <= timeout {
		t.Errorf("%s: terminationGracePeriodSeconds %d must exceed --shutdown-timeout %s", where, grace, timeout)
	}
	if tpl.Spec.AutomountServiceAccountToken == nil || *tpl.Spec.AutomountServiceAccountToken {
		t.Errorf("%s: automountServiceAccountToken should be false (tollgate does not call the Kubernetes API)", where)
	}
	return podInfo{labels: tpl.Labels, poller: poller}, true
}

// fleetCredentials are the NATS credential files, by the variable that names each.
var fleetCredentials = []string{"TOLLGATE_NATS_CREDS", "TOLLGATE_NATS_CA", "TOLLGATE_NATS_CERT", "TOLLGATE_NATS_KEY"}

var fleetName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// checkFleet checks the fleet-mode settings of a tollgate container: without want.fleet none is
// set; with it, every NATS server is a URL, the fleet name and replicas are valid, and each
// credential file is a key of a read-only Secret volume. It reports whether tg is a fleet
// poller: in fleet mode, the Stripe API key (polling, reconciliation) marks the poller.
func checkFleet(t *testing.T, where string, tg *corev1.Container, env map[string]corev1.EnvVar,
	mountOf func(string) (corev1.VolumeMount, corev1.Volume, bool), want expect) bool {
	t.Helper()
	url, fleet := flagValue(tg, "nats-url")
	if !want.fleet {
		for _, flag := range []string{"nats-url", "nats-creds", "nats-ca", "nats-cert", "nats-key", "fleet", "fleet-replicas", "fleet-history"} {
			if _, ok := flagValue(tg, flag); ok {
				t.Errorf("%s: --%s is set outside fleet mode", where, flag)
			}
		}
		return false
	}
	if !fleet || url == "" {
		t.Errorf("%s: fleet mode without --nats-url", where)
		return false
	}
	for _, server := range strings.Split(url, ",") {
		scheme, host, ok := strings.Cut(server, "://")
		if !ok || !slices.Contains([]string{"nats", "tls"}, scheme) || host == "" || strings.ContainsAny(host, " /") {
			t.Errorf("%s: --nats-url server %q is not nats://host:port or tls://host:port", where, server)
		}
	}
	if name, ok := flagValue(tg, "fleet"); ok && !fleetName.MatchString(name) {
		t.Errorf("%s: --fleet %q: stream and bucket names take letters, digits, - and _ only", where, name)
	}
	if r, ok := flagValue(tg, "fleet-replicas"); ok {
		if n, err := strconv.Atoi(r); err != nil || n < 1 || n > 5 {
			t.Errorf("%s: --fleet-replicas %q: JetStream takes 1 to 5 replicas", where, r)
		}
	}
	if h, ok := flagValue(tg, "fleet-history"); ok {
		if _, err := time.ParseDuration(h); err != nil {
			t.Errorf("%s: --fleet-history %q: %v", where, h, err)
		}
	}
	for _, name := range fleetCredentials {
		e, ok := env[name]
		if !ok {
			continue
		}
		if e.ValueFrom != nil || !strings.HasPrefix(e.Value, "/") {
			t.Errorf("%s: %s must be the path of a file mounted from a Secret, got %+v", where, name, e)
			continue
		}
		m, v, ok := mountOf(e.Value)
		switch {
		case !ok || v.Secret == nil:
			t.Errorf("%s: %s %s is not on a Secret volume", where, name, e.Value)
		case !m.ReadOnly:
			t.Errorf("%s: Secret volume %s should be mounted readOnly", where, m.Name)
		case !slices.ContainsFunc(v.Secret.Items, func(k corev1.KeyToPath) bool {
			return k.Path == strings.TrimPrefix(e.Value, strings.TrimSuffix(m.MountPath, "/")+"/")
		}):
			t.Errorf("%s: %s %s is not an item of Secret volume %s (%v)", where, name, e.Value, v.Name, v.Secret.Items)
		}
	}
	_, cert := env["TOLLGATE_NATS_CERT"]
	_, key := env["TOLLGATE_NATS_KEY"]
	if cert != key {
		t.Errorf("%s: TOLLGATE_NATS_CERT and TOLLGATE_NATS_KEY go together", where)
	}
	_, apiKey := env["TOLLGATE_STRIPE_API_KEY"]
	return apiKey
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// flagValue finds --name=value (or --name value) in args, else TOLLGATE_NAME in env.
func flagValue(c *corev1.Container, name string) (string, bool) {
	args := append(slices.Clone(c.Command), c.Args...)
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	envName := "TOLLGATE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	for _, e := range c.Env {
		if e.Name == envName && e.ValueFrom == nil {
			return e.Value, true
		}
	}
	return "", false
}

func listenPort(c *corev1.Container, flag string, def int) int {
	v, ok := flagValue(c, flag)
	if !ok {
		return def
	}
	i := strings.LastIndex(v, ":")
	n, err := strconv.Atoi(v[i+1:])
	if err != nil {
		return -1
	}
	return n
}

func checkProbe(t *testing.T, where string, p *corev1.Probe, path string) {
	t.Helper()
	if p == nil {
		t.Errorf("%s: missing", where)
		return
	}
	if p.HTTPGet == nil {
		t.Errorf("%s: not an httpGet probe", where)
		return
	}
	if p.HTTPGet.Path != path {
		t.Errorf("%s: path %q, want %q", where, p.HTTPGet.Path, path)
	}
	if p.HTTPGet.Port != intstr.FromString("ops") {
		t.Errorf("%s: port %s, want the named port ops", where, p.HTTPGet.Port.String())
	}
}

// checkRestricted applies the restricted Pod Security Standard to one container.
func checkRestricted(t *testing.T, where string, pod *corev1.PodSecurityContext, c *corev1.SecurityContext) {
	t.Helper()
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	if c == nil {
		t.Errorf("%s: no securityContext", where)
		return
	}
	nonRoot := (c.RunAsNonRoot != nil && *c.RunAsNonRoot) || (c.RunAsNonRoot == nil && pod.RunAsNonRoot != nil && *pod.RunAsNonRoot)
	if !nonRoot {
		t.Errorf("%s: runAsNonRoot is not true", where)
	}
	if (c.RunAsUser != nil && *c.RunAsUser == 0) || (c.RunAsUser == nil && pod.RunAsUser != nil && *pod.RunAsUser == 0) {
		t.Errorf("%s: runs as uid 0", where)
	}
	if c.AllowPrivilegeEscalation == nil || *c.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation must be false", where)
	}
	if c.Privileged != nil && *c.Privileged {
		t.Errorf("%s: privileged", where)
	}
	if c.Capabilities == nil || !slices.Contains(c.Capabilities.Drop, "ALL") {
		t.Errorf("%s: capabilities must drop ALL", where)
	} else if len(c.Capabilities.Add) > 0 && !(len(c.Capabilities.Add) == 1 && c.Capabilities.Add[0] == "NET_BIND_SERVICE") {
		t.Errorf("%s: adds capabilities %v", where, c.Capabilities.Add)
	}
	if c.ReadOnlyRootFilesystem == nil || !*c.ReadOnlyRootFilesystem {
		t.Errorf("%s: readOnlyRootFilesystem must be true", where)
	}
	seccomp := c.SeccompProfile
	if seccomp == nil {
		seccomp = pod.SeccompProfile
	}
	if seccomp == nil || (seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault && seccomp.Type != corev1.SeccompProfileTypeLocalhost) {
		t.Errorf("%s: seccompProfile must be RuntimeDefault", where)
	}
}

// checkCatalog decodes a catalog the way `tollgate serve --catalog` does.
func checkCatalog(t *testing.T, where string, raw []byte) {
	t.Helper()
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		t.Errorf("catalog %s: not YAML: %v", where, err)
		return
	}
	if _, err := tollgate.DecodeCatalog(bytes.NewReader(js)); err != nil {
		t.Errorf("catalog %s: tollgate would refuse it: %v", where, err)
	}
}

func podsMatch(sel labels.Selector, pods []podInfo) bool {
	for _, p := range pods {
		if sel.Matches(labels.Set(p.labels)) {
			return true
		}
	}
	return false
}

func isWebhookPort(p intstr.IntOrString) bool {
	return p == intstr.FromString("webhook") || p == intstr.FromInt32(webhookPort)
}

func isOpsPort(p intstr.IntOrString) bool {
	return p == intstr.FromString("ops") || p == intstr.FromInt32(opsPort)
}

func checkService(t *testing.T, b bundle, pods []podInfo) {
	t.Helper()
	svcs := b.all("v1/Service")
	if len(svcs) == 0 {
		t.Errorf("no Service for the webhook listener")
	}
	for _, o := range svcs {
		s := o.obj.(*corev1.Service)
		if !podsMatch(labels.SelectorFromSet(s.Spec.Selector), pods) {
			t.Errorf("Service %s: selector %v matches no tollgate pod", s.Name, s.Spec.Selector)
		}
		for _, p := range s.Spec.Ports {
			target := p.TargetPort
			if target == (intstr.IntOrString{}) {
				target = intstr.FromInt32(p.Port)
			}
			if !isWebhookPort(target) {
				t.Errorf("Service %s: port %s targets %s; only the webhook listener may be a Service", s.Name, p.Name, target.String())
			}
		}
	}
}

func checkIngress(t *testing.T, b bundle, want bool) {
	t.Helper()
	ings := b.all("networking.k8s.io/v1/Ingress")
	if want && len(ings) == 0 {
		t.Errorf("no Ingress")
	}
	for _, o := range ings {
		ing := o.obj.(*networkingv1.Ingress)
		if ing.Spec.DefaultBackend != nil {
			t.Errorf("Ingress %s: a default backend routes every path", ing.Name)
		}
		for _, r := range ing.Spec.Rules {
			if r.HTTP == nil {
				continue
			}
			for _, p := range r.HTTP.Paths {
				if p.Path != "/webhooks/stripe" {
					t.Errorf("Ingress %s: path %q; only /webhooks/stripe is routed", ing.Name, p.Path)
				}
				svc := p.Backend.Service
				if svc == nil {
					t.Errorf("Ingress %s: backend is not a Service", ing.Name)
					continue
				}
				o := b.find("v1/Service", svc.Name)
				if o == nil {
					t.Errorf("Ingress %s: Service %s not in the bundle", ing.Name, svc.Name)
					continue
				}
				found := false
				for _, sp := range o.obj.(*corev1.Service).Spec.Ports {
					if (svc.Port.Name != "" && sp.Name == svc.Port.Name) || (svc.Port.Number != 0 && sp.Port == svc.Port.Number) {
						found = true
					}
				}
				if !found {
					t.Errorf("Ingress %s: Service %s has no port %+v", ing.Name, svc.Name, svc.Port)
				}
			}
		}
	}
}

func checkNetworkPolicy(t *testing.T, b bundle, pods []podInfo, want bool) {
	t.Helper()
	nps := b.all("networking.k8s.io/v1/NetworkPolicy")
	if want && len(nps) == 0 {
		t.Errorf("no NetworkPolicy")
	}
	for _, o := range nps {
		np := o.obj.(*networkingv1.NetworkPolicy)
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil || !podsMatch(sel, pods) {
			t.Errorf("NetworkPolicy %s: podSelector matches no tollgate pod", np.Name)
		}
		if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			t.Errorf("NetworkPolicy %s: policyTypes lacks Ingress", np.Name)
		}
		var webhook, ops bool
		for i, r := range np.Spec.Ingress {
			if len(r.From) == 0 {
				t.Errorf("NetworkPolicy %s: ingress rule %d admits every source", np.Name, i)
			}
			for _, f := range r.From {
				if f.IPBlock != nil {
					t.Errorf("NetworkPolicy %s: ingress rule %d admits an ipBlock", np.Name, i)
				}
				if f.NamespaceSelector != nil && len(f.NamespaceSelector.MatchLabels) == 0 && len(f.NamespaceSelector.MatchExpressions) == 0 {
					t.Errorf("NetworkPolicy %s: ingress rule %d admits every namespace", np.Name, i)
				}
			}
			if len(r.Ports) == 0 {
				t.Errorf("NetworkPolicy %s: ingress rule %d admits every port", np.Name, i)
			}
			for _, p := range r.Ports {
				switch {
				case p.Port == nil:
					t.Errorf("NetworkPolicy %s: ingress rule %d admits every port", np.Name, i)
				case isWebhookPort(*p.Port):
					webhook = true
				case isOpsPort(*p.Port):
					ops = true
				default:
					t.Errorf("NetworkPolicy %s: ingress rule %d admits port %s; only webhook and ops", np.Name, i, p.Port.String())
				}
			}
		}
		if !webhook || !ops {
			t.Errorf("NetworkPolicy %s: must admit the webhook port (%v) and the ops port (%v)", np.Name, webhook, ops)
		}
	}
}

func checkPodMonitor(t *testing.T, b bundle, pods []podInfo, want bool) {
	t.Helper()
	pms := b.all("monitoring.coreos.com/v1/PodMonitor")
	if want && len(pms) == 0 {
		t.Errorf("no PodMonitor")
	}
	for _, o := range pms {
		pm := o.obj.(*monitoringv1.PodMonitor)
		sel, err := metav1.LabelSelectorAsSelector(&pm.Spec.Selector)
		if err != nil || !podsMatch(sel, pods) {
			t.Errorf("PodMonitor %s: selector matches no tollgate pod", pm.Name)
		}
		if len(pm.Spec.PodMetricsEndpoints) == 0 {
			t.Errorf("PodMonitor %s: no endpoints", pm.Name)
		}
		for _, e := range pm.Spec.PodMetricsEndpoints {
			if e.Port == nil || *e.Port != "ops" {
				t.Errorf("PodMonitor %s: endpoint must scrape the port named ops", pm.Name)
			}
			if e.Path != "" && e.Path != "/metrics" {
				t.Errorf("PodMonitor %s: path %q, want /metrics", pm.Name, e.Path)
			}
		}
	}
}

func checkPrometheusRule(t *testing.T, b bundle, want bool) {
	t.Helper()
	prs := b.all("monitoring.coreos.com/v1/PrometheusRule")
	if want && len(prs) == 0 {
		t.Errorf("no PrometheusRule")
	}
	plain := plainRuleSpec(t)
	for _, o := range prs {
		pr := o.obj.(*monitoringv1.PrometheusRule)
		if !reflect.DeepEqual(pr.Spec, plain) {
			t.Errorf("PrometheusRule %s (%s) differs from prometheus/tollgate-rules.yaml", pr.Name, o.src)
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Kubernetes manifests

// kustomization is the part of a kustomization.yaml the raw checks read.
type kustomization struct {
	Resources          []string `json:"resources"`
	ConfigMapGenerator []struct {
		Name  string   `json:"name"`
		Files []string `json:"files"`
	} `json:"configMapGenerator"`
	Patches []struct {
		Path string `json:"path"`
	} `json:"patches"`
}

func readKustomization(t *testing.T, dir string) kustomization {
	t.Helper()
	var k kustomization
	if err := yaml.Unmarshal(readFile(t, filepath.Join(dir, "kustomization.yaml")), &k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	return k
}

// TestRawKubernetesManifests needs no tool: it decodes the base's resources strictly, builds
// the generated ConfigMap from its files, and runs the bundle checks on that. The overlay's
// patches are decoded strictly too (they are partial objects of the same types).
func TestRawKubernetesManifests(t *testing.T) {
	base := filepath.Join("kubernetes", "base")
	k := readKustomization(t, base)
	var b bundle
	for _, r := range k.Resources {
		b = append(b, decodeStream(t, filepath.Join(base, r), readFile(t, filepath.Join(base, r)))...)
	}
	for _, g := range k.ConfigMapGenerator {
		cm := &corev1.ConfigMap{Data: map[string]string{}}
		cm.Name = g.Name
		for _, f := range g.Files {
			cm.Data[filepath.Base(f)] = string(readFile(t, filepath.Join(base, f)))
		}
		b = append(b, object{src: base + " configMapGenerator", kind: "v1/ConfigMap", name: g.Name, obj: cm})
	}
	checkBundle(t, b, expect{sidecar: true, stripeSecret: true, configMap: true, ingress: true,
		podMonitor: true, networkPolicy: true})

	overlay := filepath.Join("kubernetes", "overlays", "example")
	ko := readKustomization(t, overlay)
	for _, r := range ko.Resources {
		if _, err := os.Stat(filepath.Join(overlay, r)); err != nil {
			t.Errorf("overlay resource %s: %v", r, err)
		}
	}
	for _, p := range ko.Patches {
		decodeStream(t, filepath.Join(overlay, p.Path), readFile(t, filepath.Join(overlay, p.Path)))
	}

	// The fleet overlay: its resources exist and decode strictly (its patch deletes an env entry
	// with a $patch directive, which no Go type holds; the kustomize render checks its result).
	fleet := filepath.Join("kubernetes", "overlays", "fleet")
	kf := readKustomization(t, fleet)
	for _, r := range kf.Resources {
		path := filepath.Join(fleet, r)
		if st, err := os.Stat(path); err != nil {
			t.Errorf("fleet overlay resource %s: %v", r, err)
		} else if !st.IsDir() {
			decodeStream(t, path, readFile(t, path))
		}
	}
	for _, p := range kf.Patches {
		if _, err := os.Stat(filepath.Join(fleet, p.Path)); err != nil {
			t.Errorf("fleet overlay patch %s: %v", p.Path, err)
		}
	}
}

// TestHelmChartFiles checks what needs no helm binary: Chart.yaml, values against the schema's
// top level, and that the chart's copy of the rules is the rules file.
func TestHelmChartFiles(t *testing.T) {
	dir := filepath.Join("helm", "tollgate")
	var chart struct {
		APIVersion  string   `json:"apiVersion"`
		Name        string   `json:"name"`
		Description string   `json:"description"`
		Type        string   `json:"type"`
		Version     string   `json:"version"`
		AppVersion  string   `json:"appVersion"`
		Home        string   `json:"home"`
		Sources     []string `json:"sources"`
		Keywords    []string `json:"keywords"`
	}
	if err := decodeStrict(readFile(t, filepath.Join(dir, "Chart.yaml")), &chart); err != nil {
		t.Errorf("Chart.yaml: %v", err)
	}
	if chart.APIVersion != "v2" || chart.Name != "tollgate" || chart.Version == "" || chart.AppVersion == "" {
		t.Errorf("Chart.yaml: %+v", chart)
	}
	var schema struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, "values.schema.json")), &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	var values map[string]any
	if err := yaml.UnmarshalStrict(readFile(t, filepath.Join(dir, "values.yaml")), &values); err != nil {
		t.Fatalf("values.yaml: %v", err)
	}
	for k := range values {
		if _, ok := schema.Properties[k]; !ok {
			t.Errorf("values.yaml key %s is not in values.schema.json", k)
		}
	}
	var full map[string]any
	if err := yaml.UnmarshalStrict(readFile(t, filepath.Join(dir, "ci", "full-values.yaml")), &full); err != nil {
		t.Fatalf("ci/full-values.yaml: %v", err)
	}
	if cat, ok := full["catalog"].(string); ok {
		checkCatalog(t, "ci/full-values.yaml catalog", []byte(cat))
	}
	if !bytes.Equal(readFile(t, filepath.Join(dir, "files", "tollgate-rules.yaml")), readFile(t, filepath.Join("prometheus", "tollgate-rules.yaml"))) {
		t.Errorf("helm/tollgate/files/tollgate-rules.yaml differs from prometheus/tollgate-rules.yaml: copy it")
	}
}

// TestExampleCatalog checks the kustomize base's catalog the way tollgate loads it.
func TestExampleCatalog(t *testing.T) {
	checkCatalog(t, "kubernetes/base/catalog.yaml", readFile(t, filepath.Join("kubernetes", "base", "catalog.yaml")))
}

// ---------------------------------------------------------------------------------------------
// Metric contract

// contract returns the exported series names (histograms expanded to _bucket/_sum/_count) with
// their labels, read from metrics/README.md's contract table.
func contract(t *testing.T) map[string][]string {
	t.Helper()
	readme := readFile(t, filepath.Join("..", "metrics", "README.md"))
	row := regexp.MustCompile("^\\| `(tollgate_[a-z0-9_]+)` \\| (counter|gauge|histogram|summary) \\| ([^|]*) \\|")
	lbl := regexp.MustCompile("`([a-z_]+)`")
	out := map[string][]string{}
	for _, line := range strings.Split(string(readme), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var ls []string
		for _, l := range lbl.FindAllStringSubmatch(m[3], -1) {
			ls = append(ls, l[1])
		}
		if m[2] == "histogram" {
			out[m[1]+"_bucket"] = append(slices.Clone(ls), "le")
			out[m[1]+"_sum"] = ls
			out[m[1]+"_count"] = ls
			continue
		}
		out[m[1]] = ls
	}
	if len(out) < 10 {
		t.Fatalf("metrics/README.md: only %d metrics in the contract table; has its format changed?", len(out))
	}
	// Announced metrics another change adds; drop from here once in the README's table.
	for name, ls := range pendingMetrics {
		if _, ok := out[name]; !ok {
			out[name] = ls
		}
	}
	return out
}

// pendingMetrics are metrics the dashboard already shows that are being added to the binary.
var pendingMetrics = map[string][]string{
	"tollgate_vendors_near_order_limit": {"tier", "threshold"},
	// Fleet mode (docs/fleet.md), added with the fleet package.
	"tollgate_fleet_connected":           nil,
	"tollgate_fleet_lag_messages":        nil,
	"tollgate_fleet_lag_seconds":         nil,
	"tollgate_fleet_apply_errors_total":  nil,
	"tollgate_fleet_applied_sequence":    nil,
	"tollgate_fleet_cas_retries_total":   nil,
	"tollgate_fleet_cas_conflicts_total": nil,
}

// targetLabels are the labels Prometheus adds to every scraped series (PodMonitor discovery).
var targetLabels = []string{"namespace", "pod", "container", "endpoint", "job", "instance", "service"}

var grafanaVar = regexp.MustCompile(`\$(\{[A-Za-z0-9_]+(:[a-z]+)?\}|[A-Za-z0-9_]+)`)

// expandGrafana substitutes Grafana variables so that the expression parses as PromQL.
func expandGrafana(expr string) string {
	return grafanaVar.ReplaceAllStringFunc(expr, func(v string) string {
		name := strings.Trim(v, "${}")
		name, _, _ = strings.Cut(name, ":")
		switch name {
		case "__rate_interval", "__interval", "__range":
			return "5m"
		case "__range_s", "__interval_ms":
			return "300"
		}
		return ".*" // template variables are used inside regex matchers
	})
}

// checkExpr parses a PromQL expression and checks every selector against the contract.
func checkExpr(t *testing.T, where, expr string, c map[string][]string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: PromQL does not parse: %v\n%s", where, err, expr)
		return nil
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		if name == "" {
			t.Errorf("%s: a selector without a metric name: %s", where, vs)
			return nil
		}
		names = append(names, name)
		ls, ok := c[name]
		if !ok {
			t.Errorf("%s: metric %s is not exported by tollgate (metrics/README.md)", where, name)
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == "__name__" {
				continue
			}
			if !slices.Contains(ls, m.Name) && !slices.Contains(targetLabels, m.Name) {
				t.Errorf("%s: %s has no label %s (labels: %v)", where, name, m.Name, ls)
			}
		}
		return nil
	})
	return names
}

func TestContractParses(t *testing.T) {
	c := contract(t)
	for _, want := range []string{"tollgate_decisions_total", "tollgate_decision_duration_seconds_bucket",
		"tollgate_webhook_events_total", "tollgate_store_size_bytes", "tollgate_orders_capacity"} {
		if _, ok := c[want]; !ok {
			t.Errorf("contract lacks %s", want)
		}
	}
	if !slices.Contains(c["tollgate_decision_duration_seconds_bucket"], "le") {
		t.Errorf("histogram bucket series lacks le")
	}
}

// ---------------------------------------------------------------------------------------------
// Alert rules

func plainRuleSpec(t *testing.T) monitoringv1.PrometheusRuleSpec {
	t.Helper()
	var spec monitoringv1.PrometheusRuleSpec
	if err := decodeStrict(readFile(t, filepath.Join("prometheus", "tollgate-rules.yaml")), &spec); err != nil {
		t.Fatalf("prometheus/tollgate-rules.yaml does not decode strictly as a PrometheusRule spec: %v", err)
	}
	return spec
}

var alertName = regexp.MustCompile(`^Tollgate[A-Z][A-Za-z0-9]+$`)

func TestAlertRules(t *testing.T) {
	path := filepath.Join("prometheus", "tollgate-rules.yaml")
	groups, errs := rulefmt.ParseFile(path, false, model.LegacyValidation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("%s: %v", path, err)
	}
	if groups == nil {
		t.FailNow()
	}
	c := contract(t)
	seen := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				checkExpr(t, path+" record "+r.Record, r.Expr, c)
				continue
			}
			where := path + " alert " + r.Alert
			if !alertName.MatchString(r.Alert) {
				t.Errorf("%s: alert names are CamelCase with the Tollgate prefix", where)
			}
			if seen[r.Alert] {
				t.Errorf("%s: duplicate alert", where)
			}
			seen[r.Alert] = true
			switch r.Labels["severity"] {
			case "critical", "warning", "info":
			default:
				t.Errorf("%s: severity label %q, want critical, warning or info", where, r.Labels["severity"])
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no %s annotation", where, a)
				}
			}
			if len(checkExpr(t, where, r.Expr, c)) == 0 {
				t.Errorf("%s: expression reads no tollgate metric", where)
			}
		}
	}
	for _, want := range []string{"TollgateWebhooksFailing", "TollgateWebhookSignatureFailures", "TollgateStale",
		"TollgatePolicyReloadFailing", "TollgateDecisionLatencyHigh", "TollgateStoreNearLimit",
		"TollgateFleetDisconnected", "TollgateFleetLagging", "TollgateFleetBacklog"} {
		if !seen[want] {
			t.Errorf("missing alert %s", want)
		}
	}

	// The unit test file names this rules file and tests every alert.
	var ut struct {
		RuleFiles []string `json:"rule_files"`
		Tests     []struct {
			AlertRuleTests []struct {
				Alertname string `json:"alertname"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(readFile(t, filepath.Join("prometheus", "tollgate-rules_test.yaml")), &ut); err != nil {
		t.Fatalf("tollgate-rules_test.yaml: %v", err)
	}
	if !slices.Equal(ut.RuleFiles, []string{"tollgate-rules.yaml"}) {
		t.Errorf("tollgate-rules_test.yaml: rule_files %v", ut.RuleFiles)
	}
	tested := map[string]bool{}
	for _, tc := range ut.Tests {
		for _, a := range tc.AlertRuleTests {
			tested[a.Alertname] = true
		}
	}
	for name := range seen {
		if !tested[name] {
			t.Errorf("alert %s has no promtool unit test in tollgate-rules_test.yaml", name)
		}
	}
}

// TestPrometheusRuleManifest: the operator wrapper decodes strictly and equals the rules file.
func TestPrometheusRuleManifest(t *testing.T) {
	path := filepath.Join("prometheus", "prometheusrule.yaml")
	objs := decodeStream(t, path, readFile(t, path))
	if len(objs) != 1 || objs[0].kind != "monitoring.coreos.com/v1/PrometheusRule" {
		t.Fatalf("%s: want exactly one PrometheusRule, got %d objects", path, len(objs))
	}
	checkPrometheusRule(t, bundle(objs), true)
}

// ---------------------------------------------------------------------------------------------
// Grafana dashboard

func TestDashboard(t *testing.T) {
	path := filepath.Join("grafana", "tollgate.json")
	raw := readFile(t, path)
	var d map[string]any
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	// A datasource template variable, and no datasource uid other than a variable reference.
	var dsVar string
	tmpl, _ := d["templating"].(map[string]any)
	vars, _ := tmpl["list"].([]any)
	for _, v := range vars {
		v, _ := v.(map[string]any)
		if v["type"] == "datasource" && v["query"] == "prometheus" {
			dsVar, _ = v["name"].(string)
		}
	}
	if dsVar == "" {
		t.Fatalf("%s: no datasource template variable of type prometheus", path)
	}
	walk(d, func(key string, v any) {
		if key != "datasource" {
			return
		}
		switch ds := v.(type) {
		case string:
			if ds != "$"+dsVar && ds != "${"+dsVar+"}" {
				t.Errorf("%s: hard-coded datasource %q", path, ds)
			}
		case map[string]any:
			uid, _ := ds["uid"].(string)
			if ds["type"] == "grafana" { // built-in annotations
				return
			}
			if uid != "$"+dsVar && uid != "${"+dsVar+"}" {
				t.Errorf("%s: hard-coded datasource uid %q", path, uid)
			}
		}
	})

	c := contract(t)
	used := map[string]bool{}
	var exprs int
	panels, _ := d["panels"].([]any)
	var titles []string
	walk(d["panels"], func(key string, v any) {
		if key != "targets" {
			return
		}
		for _, tg := range v.([]any) {
			e, _ := tg.(map[string]any)["expr"].(string)
			if e == "" {
				continue
			}
			exprs++
			for _, n := range checkExpr(t, path+" "+e, expandGrafana(e), c) {
				used[n] = true
			}
		}
	})
	for _, v := range vars {
		v, _ := v.(map[string]any)
		q, _ := v["definition"].(string)
		if inner, ok := strings.CutPrefix(q, "label_values("); ok {
			sel, _, _ := strings.Cut(strings.TrimSuffix(inner, ")"), ", ")
			if strings.Contains(inner, ", ") { // label_values(selector, label)
				checkExpr(t, path+" variable "+fmt.Sprint(v["name"]), expandGrafana(sel), c)
			}
		}
	}
	for _, p := range panels {
		if s, ok := p.(map[string]any)["title"].(string); ok {
			titles = append(titles, s)
		}
	}
	if exprs == 0 {
		t.Fatalf("%s: no PromQL targets", path)
	}
	// The panels the issue asks for, by the metrics they must show.
	for _, want := range []string{"tollgate_decisions_total", "tollgate_decision_duration_seconds_bucket",
		"tollgate_decision_cache_hits_total", "tollgate_decision_cache_misses_total", "tollgate_webhook_events_total",
		"tollgate_stripe_seconds_since_last_applied", "tollgate_vendors", "tollgate_orders_used",
		"tollgate_orders_capacity", "tollgate_vendors_near_order_limit",
		"tollgate_fleet_connected", "tollgate_fleet_lag_messages", "tollgate_fleet_lag_seconds",
		"tollgate_fleet_apply_errors_total", "tollgate_fleet_cas_retries_total", "tollgate_fleet_cas_conflicts_total"} {
		if !used[want] {
			t.Errorf("%s: no panel shows %s", path, want)
		}
	}
	if !strings.Contains(string(raw), "histogram_quantile(") {
		t.Errorf("%s: no latency quantile panel", path)
	}
	sort.Strings(titles)
	t.Logf("%d panels, %d expressions: %s", len(panels), exprs, strings.Join(titles, "; "))
}

// walk calls f for every key/value of a decoded JSON tree.
func walk(v any, f func(key string, v any)) {
	switch x := v.(type) {
	case map[string]any:
		for k, vv := range x {
			f(k, vv)
			walk(vv, f)
		}
	case []any:
		for _, vv := range x {
			walk(vv, f)
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Alert rule unit tests, evaluated through the Prometheus Go packages
//
// tollgate-rules_test.yaml is in promtool's `test rules` format. Building promtool takes
// minutes, so the tests run here instead, through the same packages promtool uses: promqltest's
// lazy loader expands input_series, the rules manager loads tollgate-rules.yaml, every group is
// evaluated each evaluation_interval, and the firing alerts at each eval_time are compared with
// exp_alerts (labels plus alertname, and annotations, exactly as promtool compares them).
// deploy/check.sh also runs `promtool test rules` when a promtool binary is on PATH.

type ruleUnitFile struct {
	RuleFiles          []string        `json:"rule_files"`
	EvaluationInterval string          `json:"evaluation_interval"`
	Tests              []ruleUnitGroup `json:"tests"`
}

type ruleUnitGroup struct {
	Name        string `json:"name"`
	Interval    string `json:"interval"`
	InputSeries []struct {
		Series string `json:"series"`
		Values string `json:"values"`
	} `json:"input_series"`
	AlertRuleTests []struct {
		EvalTime  string `json:"eval_time"`
		Alertname string `json:"alertname"`
		ExpAlerts []struct {
			ExpLabels      map[string]string `json:"exp_labels"`
			ExpAnnotations map[string]string `json:"exp_annotations"`
		} `json:"exp_alerts"`
	} `json:"alert_rule_test"`
}

func promDuration(t *testing.T, s, def string) time.Duration {
	t.Helper()
	if s == "" {
		s = def
	}
	d, err := model.ParseDuration(s)
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return time.Duration(d)
}

func TestAlertRuleUnitTests(t *testing.T) {
	dir := "prometheus"
	var f ruleUnitFile
	if err := decodeStrict(readFile(t, filepath.Join(dir, "tollgate-rules_test.yaml")), &f); err != nil {
		t.Fatalf("tollgate-rules_test.yaml (promtool format, decoded strictly): %v", err)
	}
	evalInterval := promDuration(t, f.EvaluationInterval, "1m")
	var ruleFiles []string
	for _, rf := range f.RuleFiles {
		ruleFiles = append(ruleFiles, filepath.Join(dir, rf))
	}
	for i, tg := range f.Tests {
		name := tg.Name
		if name == "" && len(tg.AlertRuleTests) > 0 {
			name = tg.AlertRuleTests[0].Alertname
		}
		t.Run(fmt.Sprintf("%d-%s", i, name), func(t *testing.T) {
			runRuleUnitGroup(t, tg, evalInterval, ruleFiles)
		})
	}
}

func runRuleUnitGroup(t *testing.T, tg ruleUnitGroup, evalInterval time.Duration, ruleFiles []string) {
	var load strings.Builder
	fmt.Fprintf(&load, "load %s\n", model.Duration(promDuration(t, tg.Interval, "1m")))
	for _, s := range tg.InputSeries {
		fmt.Fprintf(&load, "  %s %s\n", s.Series, s.Values)
	}
	p := parser.NewParser(parser.Options{})
	suite, err := promqltest.NewLazyLoader(load.String(), promqltest.LazyLoaderOpts{
		EnableAtModifier: true, EnableNegativeOffset: true, StartTime: time.Unix(0, 0).UTC(), Parser: p,
	})
	if err != nil {
		t.Fatalf("input_series: %v", err)
	}
	defer suite.Close()
	suite.SubqueryInterval = evalInterval

	m := rules.NewManager(&rules.ManagerOptions{
		QueryFunc:    rules.EngineQueryFunc(suite.QueryEngine(), suite.Storage()),
		AppendableV2: suite.Storage(),
		Context:      context.Background(),
		NotifyFunc:   func(context.Context, string, ...*rules.Alert) {},
		Logger:       slog.New(slog.DiscardHandler),
		Parser:       p,
	})
	groupsMap, errs := m.LoadGroups(evalInterval, promlabels.EmptyLabels(), "", nil, false, ruleFiles...)
	for _, err := range errs {
		t.Fatalf("load rules: %v", err)
	}
	var groups []*rules.Group
	for _, g := range groupsMap {
		groups = append(groups, g)
		for _, r := range g.Rules() {
			if ar, ok := r.(*rules.AlertingRule); ok {
				ar.SetRestored(true)
			}
		}
	}

	type check struct {
		at        time.Duration
		alertname string
		want      []string
	}
	var checks []check
	var maxt time.Duration
	for _, at := range tg.AlertRuleTests {
		c := check{at: promDuration(t, at.EvalTime, ""), alertname: at.Alertname}
		for _, e := range at.ExpAlerts {
			ls := maps.Clone(e.ExpLabels)
			if ls == nil {
				ls = map[string]string{}
			}
			ls["alertname"] = at.Alertname
			c.want = append(c.want, promlabels.FromMap(ls).String()+" "+promlabels.FromMap(e.ExpAnnotations).String())
		}
		sort.Strings(c.want)
		checks = append(checks, c)
		maxt = max(maxt, c.at)
	}
	sort.SliceStable(checks, func(i, j int) bool { return checks[i].at < checks[j].at })

	mint := time.Unix(0, 0).UTC()
	next := 0
	for ts := mint; !ts.After(mint.Add(maxt)); ts = ts.Add(evalInterval) {
		suite.WithSamplesTill(ts, func(err error) {
			if err != nil {
				t.Fatalf("load samples till %s: %v", ts.Sub(mint), err)
			}
			for _, g := range groups {
				g.Eval(suite.Context(), ts)
				for _, r := range g.Rules() {
					if r.LastError() != nil {
						t.Fatalf("rule %s at %s: %v", r.Name(), ts.Sub(mint), r.LastError())
					}
				}
			}
		})
		// An eval_time in [ts, ts+evalInterval) is checked against the evaluation at ts.
		for next < len(checks) && checks[next].at >= ts.Sub(mint) && checks[next].at < ts.Add(evalInterval).Sub(mint) {
			c := checks[next]
			next++
			var got []string
			for _, g := range groups {
				for _, r := range g.Rules() {
					ar, ok := r.(*rules.AlertingRule)
					if !ok || ar.Name() != c.alertname {
						continue
					}
					for _, a := range ar.ActiveAlerts() {
						if a.State == rules.StateFiring {
							got = append(got, a.Labels.String()+" "+a.Annotations.String())
						}
					}
				}
			}
			sort.Strings(got)
			if !slices.Equal(got, c.want) {
				t.Errorf("%s at %s:\n  want %d alert(s):\n    %s\n  got %d:\n    %s", c.alertname, c.at,
					len(c.want), strings.Join(c.want, "\n    "), len(got), strings.Join(got, "\n    "))
			}
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Dockerfile (CI has no Docker engine: its instructions are checked here, and check.sh builds
// the binary with the same command)

func TestDockerfile(t *testing.T) {
	raw := string(readFile(t, "Dockerfile"))
	// Join continuation lines, drop comments.
	var lines []string
	for _, l := range strings.Split(strings.ReplaceAll(raw, "\\\n", " "), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	var stages []string
	var final []string // instructions of the last stage
	for _, l := range lines {
		instr := strings.ToUpper(strings.Fields(l)[0])
		if instr == "FROM" {
			stages = append(stages, l)
			final = nil
		}
		final = append(final, l)
		if instr == "HEALTHCHECK" {
			t.Errorf("Dockerfile: HEALTHCHECK (Kubernetes probes do that): %s", l)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile: want a multi-stage build, got %d stage(s)", len(stages))
	}
	if !strings.HasPrefix(stages[0], "FROM golang:") {
		t.Errorf("Dockerfile: build stage %q, want golang", stages[0])
	}
	if f := strings.Fields(stages[len(stages)-1]); len(f) < 2 || f[1] != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("Dockerfile: runtime stage %q, want gcr.io/distroless/static-debian12:nonroot", stages[len(stages)-1])
	}
	want := map[string]bool{
		`USER 65532:65532`:                  false,
		`EXPOSE 8182 9181`:                  false,
		`ENTRYPOINT ["/tollgate", "serve"]`: false,
	}
	for _, l := range final {
		if _, ok := want[l]; ok {
			want[l] = true
		}
		if strings.HasPrefix(l, "EXPOSE") && strings.Contains(l, "8181") {
			t.Errorf("Dockerfile: exposes the loopback decision API: %s", l)
		}
	}
	for l, seen := range want {
		if !seen {
			t.Errorf("Dockerfile: the runtime stage lacks %s", l)
		}
	}
	build := `CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}"`
	if !strings.Contains(raw, build) {
		t.Errorf("Dockerfile: no %s", build)
	}
	if !strings.Contains(string(readFile(t, "check.sh")), build) {
		t.Errorf("check.sh does not build the binary as the Dockerfile does (%s)", build)
	}
}
