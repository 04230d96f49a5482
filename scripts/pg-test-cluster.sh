#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: initdb in a temporary directory as an
# unprivileged user, listening on a free loopback port only, trust authentication, no fsync.
#
#   scripts/pg-test-cluster.sh start DIR   # start; prints the URL for TOLLGATE_TEST_POSTGRES_URL
#   scripts/pg-test-cluster.sh stop DIR    # stop and delete DIR
#   scripts/pg-test-cluster.sh run CMD...  # run CMD with TOLLGATE_TEST_POSTGRES_URL set: the
#                                          # variable as given, else a cluster started for CMD
#                                          # and stopped after it (when initdb/pg_ctl exist)
#
# run without PostgreSQL binaries runs CMD without the variable, except with CI=true, where it
# fails: CI must test against a real PostgreSQL (.ci/run installs Debian's postgresql).
set -euo pipefail

pg_bindir() {
	if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
		dirname "$(command -v pg_ctl)"
		return 0
	fi
	local d
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

# as_owner runs a command as the cluster's owner: PostgreSQL refuses to run as root, so root
# hands the cluster to the unprivileged "nobody".
as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u nobody -- "$@"
	else
		"$@"
	fi
}

free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 20000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	echo "pg-test-cluster: no free port found" >&2
	return 1
}

start() {
	local dir=$1 bin port
	bin=$(pg_bindir) || { echo "pg-test-cluster: initdb/pg_ctl not found (apt-get install -y postgresql)" >&2; return 1; }
	mkdir -p "$dir"
	if [ "$(id -u)" = 0 ]; then
		chown nobody "$dir"
	fi
	as_owner "$bin/initdb" -D "$dir/data" -U tollgate --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; return 1; }
	port=$(free_port)
	as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-k $dir -h 127.0.0.1 -p $port -c fsync=off -c full_page_writes=off" start >/dev/null ||
		{ cat "$dir/server.log" >&2; return 1; }
	echo "postgres://tollgate@127.0.0.1:$port/postgres?sslmode=disable"
}

stop() {
	local dir=$1 bin
	if bin=$(pg_bindir) && [ -d "$dir/data" ]; then
		as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
}

run() {
	if [ -n "${TOLLGATE_TEST_POSTGRES_URL:-}" ]; then
		exec "$@"
	fi
	if ! pg_bindir >/dev/null; then
		if [ "${CI:-}" = true ]; then
			echo "pg-test-cluster: CI=true but no PostgreSQL (initdb/pg_ctl) is installed" >&2
			return 1
		fi
		echo "pg-test-cluster: no PostgreSQL binaries; the PostgreSQL tests will be skipped" >&2
		exec "$@"
	fi
	local url rc=0
	# Global, not local: the EXIT trap runs after this function has returned.
	run_dir=$(mktemp -d "${TMPDIR:-/tmp}/tollgate-pg.XXXXXX")
	trap 'stop "$run_dir"' EXIT
	trap 'exit 130' INT TERM
	url=$(start "$run_dir")
	echo "pg-test-cluster: PostgreSQL at $url" >&2
	TOLLGATE_TEST_POSTGRES_URL=$url "$@" || rc=$?
	return "$rc"
}

case "${1:-}" in
start) start "$2" ;;
stop) stop "$2" ;;
run) shift; run "$@" ;;
*) echo "usage: $0 start DIR | stop DIR | run CMD..." >&2; exit 2 ;;
esac
