//go:build deployrender

// The tests of rendered output need kustomize and helm, which deploy/check.sh installs and runs
// (make deploy-check, part of CI); they build only with -tags deployrender, so a plain
// `go test ./...` neither runs nor skips them.

package deploy_test

import (
	"os"
	"testing"
)

// rendered returns the file named by env, which deploy/check.sh renders with kustomize/helm.
func rendered(t *testing.T, env string) []byte {
	t.Helper()
	path := os.Getenv(env)
	if path == "" {
		t.Fatalf("%s is unset: these tests check kustomize/helm output; run them through deploy/check.sh (make deploy-check)", env)
	}
	b := readFile(t, path)
	if len(splitDocs(b)) == 0 {
		t.Fatalf("%s (%s) holds no YAML documents", env, path)
	}
	return b
}

// TestKustomizeRendered checks `kustomize build deploy/kubernetes/overlays/example`.
func TestKustomizeRendered(t *testing.T) {
	b := bundle(decodeStream(t, "kustomize build", rendered(t, "TOLLGATE_KUSTOMIZE_OUT")))
	checkBundle(t, b, expect{sidecar: true, stripeSecret: true, secretInBundle: true, configMap: true,
		ingress: true, podMonitor: true, networkPolicy: true})
}

// TestHelmRendered checks `helm template` with the chart's defaults (tollgate alone, no
// Operator objects) and with ci/full-values.yaml (app + native sidecar, everything on).
func TestHelmRendered(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		b := bundle(decodeStream(t, "helm template", rendered(t, "TOLLGATE_HELM_OUT")))
		checkBundle(t, b, expect{configMap: true, networkPolicy: true})
		if len(b.all("monitoring.coreos.com/v1/PodMonitor"))+len(b.all("monitoring.coreos.com/v1/PrometheusRule")) > 0 {
			t.Errorf("defaults render Prometheus Operator objects: a cluster without its CRDs could not install the chart")
		}
	})
	t.Run("full-values", func(t *testing.T) {
		b := bundle(decodeStream(t, "helm template -f ci/full-values.yaml", rendered(t, "TOLLGATE_HELM_FULL_OUT")))
		checkBundle(t, b, expect{sidecar: true, stripeSecret: true, configMap: true, ingress: true,
			podMonitor: true, prometheusRule: true, networkPolicy: true})
	})
	t.Run("examples-shop-app", func(t *testing.T) {
		// An app chart of one's own with tollgate as a dependency and its tollgate.sidecar.
		b := bundle(decodeStream(t, "helm template examples/shop-app", rendered(t, "TOLLGATE_HELM_PARENT_OUT")))
		checkBundle(t, b, expect{sidecar: true, stripeSecret: true, configMap: true, ingress: true,
			podMonitor: true, networkPolicy: true})
	})
}
