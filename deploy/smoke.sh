#!/usr/bin/env bash
# Smoke test of a tollgate binary the way the manifests run it (called by deploy/check.sh):
#   usage: deploy/smoke.sh /path/to/tollgate
# - the example ConfigMap's files (kubernetes/base: catalog.yaml, site.rego) laid out the way the
#   kubelet projects a ConfigMap volume (real files under ..<timestamp>, ..data symlink, and
#   per-key symlinks), passed as --catalog and --policy-dir, data dir in a fresh directory;
# - /health/live and /health/ready on the ops listener, tollgate_ metrics on /metrics;
# - hot reload through a ConfigMap-style ..data swap: a broken policy is refused
#   (tollgate_policy_reloads_total{result="error"} grows, still ready), a good one is taken;
# - SIGTERM: exits 0 within --shutdown-timeout.
set -euo pipefail
bin=$1
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
pid=""
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# Ports away from the defaults, so a tollgate running on this machine does not interfere.
OPS=127.0.0.1:${SMOKE_OPS_PORT:-19181}
mkdir -p "$work/etc/..v1" "$work/data"
cp "$here/kubernetes/base/catalog.yaml" "$here/kubernetes/base/site.rego" "$work/etc/..v1/"
ln -s ..v1 "$work/etc/..data"
ln -s ..data/catalog.yaml "$work/etc/catalog.yaml"
ln -s ..data/site.rego "$work/etc/site.rego"

"$bin" serve --data-dir "$work/data" --catalog "$work/etc/catalog.yaml" --policy-dir "$work/etc" \
	--listen 127.0.0.1:${SMOKE_API_PORT:-18181} --webhook-listen 127.0.0.1:${SMOKE_WEBHOOK_PORT:-18182} \
	--ops-listen "$OPS" --shutdown-timeout 10s --log-level warn >"$work/log" 2>&1 &
pid=$!

wait_for() { # wait_for DESCRIPTION COMMAND...: retry for up to 20s
	local what=$1; shift
	for _ in $(seq 200); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	echo "smoke: timed out waiting for $what"; cat "$work/log"; exit 1
}
metric() { curl -fsS "http://$OPS/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

wait_for "/health/ready" curl -fsS "http://$OPS/health/ready"
curl -fsS "http://$OPS/health/live" >/dev/null
curl -fsS "http://$OPS/metrics" | grep -q '^tollgate_policy_info{' || { echo "smoke: no tollgate_policy_info"; exit 1; }
echo "smoke: ready; policy $(curl -fsS "http://$OPS/metrics" | grep '^tollgate_policy_info{' | head -1)"

errors_before="$(metric 'tollgate_policy_reloads_total{result="error"}')"
# A broken policy, swapped in the way the kubelet updates a ConfigMap volume.
mkdir "$work/etc/..v2"
cp "$work/etc/..v1/catalog.yaml" "$work/etc/..v2/"
printf 'package tollgate.site\n\nmaintenance := \n' >"$work/etc/..v2/site.rego"
ln -s ..v2 "$work/etc/..data_tmp" && mv -T "$work/etc/..data_tmp" "$work/etc/..data"
wait_for "a refused reload" bash -c "[[ \$(curl -fsS http://$OPS/metrics | awk '\$1 == \"tollgate_policy_reloads_total{result=\\\"error\\\"}\" {print \$2}') != '$errors_before' ]]"
curl -fsS "http://$OPS/health/ready" >/dev/null || { echo "smoke: not ready after a refused reload"; exit 1; }
echo "smoke: broken policy refused, still ready"

ok_before="$(metric 'tollgate_policy_reloads_total{result="ok"}')"
mkdir "$work/etc/..v3"
cp "$work/etc/..v1/catalog.yaml" "$work/etc/..v3/"
printf 'package tollgate.site\n\nmaintenance := true\n' >"$work/etc/..v3/site.rego"
ln -s ..v3 "$work/etc/..data_tmp" && mv -T "$work/etc/..data_tmp" "$work/etc/..data"
wait_for "a good reload" bash -c "[[ \$(curl -fsS http://$OPS/metrics | awk '\$1 == \"tollgate_policy_reloads_total{result=\\\"ok\\\"}\" {print \$2}') != '$ok_before' ]]"
got="$(curl -fsS -X POST -H 'Content-Type: application/json' -d '{"input":{}}' "http://127.0.0.1:${SMOKE_API_PORT:-18181}/v1/data/tollgate/site/maintenance")"
[[ "$got" == *'"result":true'* ]] || { echo "smoke: the reloaded policy is not served: $got"; exit 1; }
echo "smoke: good policy reloaded and served ($got)"

start=$SECONDS
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
pid=""
if [[ $rc -ne 0 ]]; then echo "smoke: exit code $rc after SIGTERM"; cat "$work/log"; exit 1; fi
if (( SECONDS - start > 10 )); then echo "smoke: shutdown took $((SECONDS - start))s > --shutdown-timeout"; exit 1; fi
echo "smoke: SIGTERM -> clean exit in $((SECONDS - start))s"
