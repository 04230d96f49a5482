package main

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"

	"github.com/tollgate-pdp/tollgate/bench/internal/proc"
	"github.com/tollgate-pdp/tollgate/bench/internal/report"
	"github.com/tollgate-pdp/tollgate/bench/loadgen"
)

// fleetName is the server that runs tollgate in fleet mode, against tollgate in single mode.
const fleetName = "tollgate-fleet"

// startNATS starts a JetStream server in a process of its own, as in production it runs apart
// from the sidecar (cmd/tollgate-fleetdemo with no sidecars: the development server the README's
// `make run-fleet` uses), and returns its client URL. tollgate's readiness, which needs the
// connection, is what tells that it is up.
func startNATS(work, bin string, log *slog.Logger) (*proc.Process, string, error) {
	addr, err := proc.FreeAddr()
	if err != nil {
		return nil, "", err
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, "", fmt.Errorf("nats port: %w", err)
	}
	p, err := proc.Start("nats", filepath.Join(work, "logs"), bin,
		[]string{"--sidecars", "0", "--nats-port", port, "--data-dir", filepath.Join(work, "nats")}, nil, log)
	if err != nil {
		return nil, "", err
	}
	return p, "nats://" + addr, nil
}

// writeFleet is the fleet section of the table: tollgate in fleet mode against tollgate in
// single mode, the same store and requests, paired by round.
func writeFleet(b *strings.Builder, cfg config, results map[string]map[int][]*loadgen.Result) {
	if _, ok := results[fleetName]; !ok {
		return
	}
	fmt.Fprintf(b, "\n### Fleet mode against single mode\n\n")
	fmt.Fprintf(b, "`%s` is `tollgate serve` on a copy of the same store with `--nats-url` to a JetStream server in its own process (file storage, R1; it seeded the fleet from that store before the runs): its checks read the same local store, so the difference is the fleet's background work. Same-round pairs, median and range; the target is fleet/single >= 0.9.\n\n", fleetName)
	fmt.Fprintf(b, "| concurrency | fleet req/s | single req/s | fleet/single req/s | fleet p50 | single p50 |\n|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range cfg.conc {
		f, s := aggregate(results[fleetName][c]), aggregate(results["tollgate"][c])
		r := paired(results[fleetName][c], results["tollgate"][c])
		fmt.Fprintf(b, "| %d | %.0f | %.0f | %.2f (%.2f–%.2f) %s | %s | %s |\n", c, f.rps, s.rps,
			r.Median, r.Min, r.Max, mark(r.Median >= 0.9), report.Dur(f.p50), report.Dur(s.p50))
	}
}
