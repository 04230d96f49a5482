#!/usr/bin/env bash
# Offline validation of deploy/ (what CI runs; `make deploy-check`):
#   1. the static binary, built exactly as deploy/Dockerfile builds it (CI has no Docker engine),
#      and a smoke test of it run the way the manifests run it (deploy/smoke.sh);
#   2. pinned kustomize and helm, installed with `go install` (cached per version);
#   3. kustomize build of the example overlay, helm lint --strict, helm template (defaults,
#      ci/full-values.yaml, and fleet mode: ci/fleet-values.yaml, ci/fleet-poller-values.yaml);
#   4. go test ./deploy/... on the rendered output (strict decoding into the Kubernetes and
#      Prometheus Operator Go types, pod shape, rules, dashboard metrics). The alert rule unit
#      tests (prometheus/tollgate-rules_test.yaml, promtool's format) run inside that go test
#      through the Prometheus Go packages: building promtool with `go install` takes longer than
#      the whole rest of this script. If a promtool binary is on PATH (or PROMTOOL is set), it
#      also runs `promtool check rules` and `promtool test rules` as a cross-check.
set -euo pipefail
cd "$(dirname "$0")/.."

KUSTOMIZE_VERSION=v5.8.1   # v5.8.3 needs Go 1.27 (kustomize/api v0.21.3)
HELM_VERSION=v3.22.0
TOOLS_DIR="${DEPLOY_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tollgate-deploy-tools}"

export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
VERSION="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"

step() { printf '\n== %s\n' "$*"; }

# install NAME PACKAGE VERSION: go install into $TOOLS_DIR/NAME-VERSION unless already there.
install() {
	local name=$1 pkg=$2 version=$3 dir="$TOOLS_DIR/$1-$3"
	if [[ ! -x "$dir/$name" ]]; then
		local start=$SECONDS
		GOBIN="$dir" CGO_ENABLED=0 go install "$pkg@$version"
		echo "installed $name $version in $((SECONDS - start))s"
	fi
	printf '%s' "$dir/$name"
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

step "static binary (the Dockerfile's build, without Docker)"
GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o "$work/tollgate" ./cmd/tollgate
"$work/tollgate" version
if command -v file >/dev/null 2>&1; then
	# Not `tee /dev/stderr`: reopening stderr truncates it when it is a file (a CI log).
	kind=$(file "$work/tollgate")
	echo "$kind"
	case "$kind" in *"statically linked"*) ;; *) echo "not a static binary"; exit 1 ;; esac
fi

step "smoke test: the binary with the example ConfigMap, hot reload, SIGTERM (deploy/smoke.sh)"
bash deploy/smoke.sh "$work/tollgate"

step "tools"
KUSTOMIZE="$(install kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION")"
HELM="$(install helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION")"
"$KUSTOMIZE" version
"$HELM" version --short

step "kustomize build deploy/kubernetes/overlays/example and overlays/fleet"
"$KUSTOMIZE" build deploy/kubernetes/base >/dev/null
"$KUSTOMIZE" build deploy/kubernetes/overlays/example >"$work/kustomize.yaml"
"$KUSTOMIZE" build deploy/kubernetes/overlays/fleet >"$work/kustomize-fleet.yaml"
grep -c '^kind:' "$work/kustomize.yaml" | sed 's/^/objects: /'

step "helm lint --strict + helm template"
chart=deploy/helm/tollgate
"$HELM" lint --strict "$chart"
"$HELM" lint --strict "$chart" -f "$chart/ci/full-values.yaml"
"$HELM" lint --strict "$chart" -f "$chart/ci/fleet-values.yaml"
"$HELM" lint --strict "$chart" -f "$chart/ci/fleet-poller-values.yaml"
"$HELM" template tollgate "$chart" --namespace shop >"$work/helm.yaml"
"$HELM" template tollgate "$chart" --namespace shop -f "$chart/ci/full-values.yaml" >"$work/helm-full.yaml"
# Fleet mode (docs/fleet.md): the app's sidecars, and the fleet's one poller as a release of its own.
"$HELM" template tollgate "$chart" --namespace shop -f "$chart/ci/fleet-values.yaml" >"$work/helm-fleet.yaml"
"$HELM" template shop-poller "$chart" --namespace shop -f "$chart/ci/fleet-poller-values.yaml" >"$work/helm-fleet-poller.yaml"
if "$HELM" template shop-poller "$chart" -f "$chart/ci/fleet-poller-values.yaml" --set replicaCount=2 >/dev/null 2>&1; then
	echo "helm template: a fleet poller with replicaCount=2 must be refused"; exit 1
fi
# Your own app chart using tollgate as a dependency and its tollgate.sidecar template
# (deploy/helm/examples/shop-app), with the tollgate chart copied in as charts/tollgate.
cp -r deploy/helm/examples/shop-app "$work/shop-app"
mkdir -p "$work/shop-app/charts" && cp -r "$chart" "$work/shop-app/charts/tollgate"
"$HELM" lint --strict "$work/shop-app"
"$HELM" template shop "$work/shop-app" --namespace shop >"$work/helm-parent.yaml"
grep -c '^kind:' "$work/helm.yaml" | sed 's/^/objects (defaults): /'
grep -c '^kind:' "$work/helm-full.yaml" | sed 's/^/objects (full values): /'
grep -c '^kind:' "$work/helm-fleet.yaml" | sed 's/^/objects (fleet values): /'
grep -c '^kind:' "$work/helm-fleet-poller.yaml" | sed 's/^/objects (fleet poller values): /'
grep -c '^kind:' "$work/helm-parent.yaml" | sed 's/^/objects (examples\/shop-app): /'

PROMTOOL="${PROMTOOL:-$(command -v promtool || true)}"
if [[ -n "$PROMTOOL" ]]; then
	step "promtool check rules + test rules (cross-check; the go test runs the same unit tests)"
	"$PROMTOOL" --version 2>&1 | head -1
	"$PROMTOOL" check rules deploy/prometheus/tollgate-rules.yaml
	(cd deploy/prometheus && "$PROMTOOL" test rules tollgate-rules_test.yaml)
fi

step "go test ./deploy/..."
TOLLGATE_KUSTOMIZE_OUT="$work/kustomize.yaml" \
TOLLGATE_KUSTOMIZE_FLEET_OUT="$work/kustomize-fleet.yaml" \
TOLLGATE_HELM_OUT="$work/helm.yaml" \
TOLLGATE_HELM_FULL_OUT="$work/helm-full.yaml" \
TOLLGATE_HELM_FLEET_OUT="$work/helm-fleet.yaml" \
TOLLGATE_HELM_FLEET_POLLER_OUT="$work/helm-fleet-poller.yaml" \
TOLLGATE_HELM_PARENT_OUT="$work/helm-parent.yaml" \
	go test -tags deployrender -count=1 -v ./deploy/...
