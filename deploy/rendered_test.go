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

// TestKustomizeRendered checks `kustomize build` of overlays/example (single mode) and of
// overlays/fleet (fleet mode: the app's sidecars without the API key, and one poller).
func TestKustomizeRendered(t *testing.T) {
	t.Run("example", func(t *testing.T) {
		b := bundle(decodeStream(t, "kustomize build overlays/example", rendered(t, "TOLLGATE_KUSTOMIZE_OUT")))
		checkBundle(t, b, expect{sidecar: true, stripeSecret: true, secretInBundle: true, configMap: true,
			ingress: true, podMonitor: true, networkPolicy: true})
	})
	t.Run("fleet", func(t *testing.T) {
		b := bundle(decodeStream(t, "kustomize build overlays/fleet", rendered(t, "TOLLGATE_KUSTOMIZE_FLEET_OUT")))
		checkBundle(t, b, expect{stripeSecret: true, secretInBundle: true, configMap: true,
			ingress: true, podMonitor: true, networkPolicy: true, fleet: true, poller: true})
		if len(b.all("apps/v1/Deployment")) != 2 {
			t.Errorf("overlays/fleet: want the app Deployment and the poller's")
		}
	})
}

// TestHelmRendered checks `helm template` with the chart's defaults (tollgate alone, no
// Operator objects), with ci/full-values.yaml (app + native sidecar, everything on), and in
// fleet mode; every render but the fleet ones must have no fleet setting at all.
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
	// Fleet mode: the app's sidecars join the fleet through NATS without the Stripe API key;
	// the fleet's one poller is a release of its own with it, on one replica.
	t.Run("fleet-values", func(t *testing.T) {
		b := bundle(decodeStream(t, "helm template -f ci/fleet-values.yaml", rendered(t, "TOLLGATE_HELM_FLEET_OUT")))
		checkBundle(t, b, expect{sidecar: true, stripeSecret: true, configMap: true, ingress: true,
			podMonitor: true, prometheusRule: true, networkPolicy: true, fleet: true})
	})
	t.Run("fleet-poller-values", func(t *testing.T) {
		b := bundle(decodeStream(t, "helm template -f ci/fleet-poller-values.yaml", rendered(t, "TOLLGATE_HELM_FLEET_POLLER_OUT")))
		checkBundle(t, b, expect{stripeSecret: true, configMap: true, networkPolicy: true, fleet: true, poller: true})
	})
	t.Run("examples-shop-app", func(t *testing.T) {
		// An app chart of one's own with tollgate as a dependency and its tollgate.sidecar.
		b := bundle(decodeStream(t, "helm template examples/shop-app", rendered(t, "TOLLGATE_HELM_PARENT_OUT")))
		checkBundle(t, b, expect{sidecar: true, stripeSecret: true, configMap: true, ingress: true,
			podMonitor: true, networkPolicy: true})
	})
}
