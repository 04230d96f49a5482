// Command tollgate-fleetdemo runs a fleet on one machine for trying fleet mode (`make
// run-fleet`): an embedded NATS JetStream server and three `tollgate serve --nats-url`
// sidecars with the demo data, until interrupted. It is a development tool: the tollgate binary
// never embeds a NATS server.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	bin := flag.String("tollgate", "bin/tollgate", "the tollgate binary to run")
	dir := flag.String("data-dir", "./data/fleet", "directory for the NATS store and the sidecars' stores")
	port := flag.Int("nats-port", 4222, "NATS client port on 127.0.0.1")
	n := flag.Int("sidecars", 3, "how many sidecars")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*bin, *dir, *port, *n, log); err != nil {
		log.Error("fleet demo", "err", err)
		os.Exit(1)
	}
}

func run(bin, dir string, port, n int, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true,
		StoreDir: filepath.Join(dir, "nats"), NoSigs: true, NoLog: true})
	if err != nil {
		return fmt.Errorf("nats server: %w", err)
	}
	srv.Start()
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	if !srv.ReadyForConnections(10 * time.Second) {
		return fmt.Errorf("nats server not ready on port %d", port)
	}
	url := srv.ClientURL()
	log.Info("NATS JetStream", "url", url)
	var children []*exec.Cmd
	for i := 1; i <= n; i++ {
		base := 8081 + 100*i // 8181, 8281, 8381: decision API; +1 webhook; 9181...: ops
		args := []string{"serve", "--nats-url", url, "--fleet", "demo", "--fleet-replicas", "1",
			"--data-dir", filepath.Join(dir, fmt.Sprintf("sidecar%d", i)),
			"--listen", fmt.Sprintf("127.0.0.1:%d", base), "--webhook-listen", fmt.Sprintf("127.0.0.1:%d", base+1),
			"--ops-listen", fmt.Sprintf("127.0.0.1:%d", base+1000),
			"--admin-token", "demo-admin-token", "--stripe-webhook-secret", "whsec_demo_fleet"}
		if i == 1 {
			args = append(args, "--demo") // seeds the demo vendors through the fleet's log
		}
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 15 * time.Second
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start sidecar %d: %w", i, err)
		}
		children = append(children, cmd)
		log.Info("sidecar", "n", i, "decision", fmt.Sprintf("http://127.0.0.1:%d", base),
			"webhook", fmt.Sprintf("http://127.0.0.1:%d/webhooks/stripe", base+1), "ops", fmt.Sprintf("http://127.0.0.1:%d", base+1000))
	}
	log.Info("fleet running; webhook secret whsec_demo_fleet, admin token demo-admin-token; Ctrl-C stops it")
	<-ctx.Done()
	for _, c := range children {
		_ = c.Wait()
	}
	return nil
}
