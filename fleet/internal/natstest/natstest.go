// Package natstest runs real NATS JetStream servers in-process for tests:
// one node, or a cluster of nodes routed over loopback. Every node keeps its
// ports and its store directory across Shutdown and Restart, so a test can
// take a node down and bring the same node back.
package natstest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// readyTimeout bounds how long a node may take to accept connections.
const readyTimeout = 10 * time.Second

// Server is one embedded JetStream node.
type Server struct {
	tb   testing.TB
	opts server.Options
	srv  *server.Server
}

// Start runs a single JetStream node on a free loopback port with a store
// in t.TempDir(); it shuts down when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{tb: tb, opts: baseOptions(tb, "n0")}
	s.Restart()
	tb.Cleanup(s.Shutdown)
	return s
}

func baseOptions(tb testing.TB, name string) server.Options {
	return server.Options{
		ServerName: name,
		Host:       "127.0.0.1",
		Port:       FreePort(tb),
		NoLog:      true,
		NoSigs:     true,
		JetStream:  true,
		StoreDir:   tb.TempDir(),
		// The demo and the tests publish a few MB at most; keep the
		// in-memory reservation small on a shared machine.
		JetStreamMaxMemory: 256 << 20,
		JetStreamMaxStore:  4 << 30,
	}
}

// URL is the node's client URL (nats://127.0.0.1:PORT).
func (s *Server) URL() string {
	return fmt.Sprintf("nats://%s:%d", s.opts.Host, s.opts.Port)
}

// NATS is the running server, nil while the node is down.
func (s *Server) NATS() *server.Server { return s.srv }

// Running reports whether the node is up.
func (s *Server) Running() bool { return s.srv != nil }

// Shutdown stops the node and waits until it has stopped. Its store and its
// ports are kept for Restart. Shutting down a stopped node does nothing.
func (s *Server) Shutdown() {
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.srv = nil
}

// Restart starts the node again (or for the first time) on the same ports and
// store, and waits until it accepts connections.
func (s *Server) Restart() {
	s.tb.Helper()
	if s.srv != nil {
		return
	}
	opts := s.opts // NewServer keeps and edits its options
	srv, err := server.NewServer(&opts)
	if err != nil {
		s.tb.Fatalf("natstest: new server %s: %v", s.opts.ServerName, err)
	}
	srv.Start()
	if !srv.ReadyForConnections(readyTimeout) {
		srv.Shutdown()
		s.tb.Fatalf("natstest: server %s not ready after %s", s.opts.ServerName, readyTimeout)
	}
	s.srv = srv
}

// Cluster is n JetStream nodes routed to each other over loopback.
type Cluster struct {
	Nodes []*Server
}

// StartCluster runs an n-node JetStream cluster and waits until it has
// elected a meta leader, so streams of up to n replicas can be created.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	if n < 1 {
		tb.Fatalf("natstest: cluster of %d nodes", n)
	}
	c := &Cluster{}
	routes := make([]*url.URL, n)
	for i := range n {
		opts := baseOptions(tb, fmt.Sprintf("n%d", i))
		opts.Cluster = server.ClusterOpts{Name: "natstest", Host: "127.0.0.1", Port: FreePort(tb)}
		routes[i] = &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", opts.Cluster.Port)}
		c.Nodes = append(c.Nodes, &Server{tb: tb, opts: opts})
	}
	for _, node := range c.Nodes {
		node.opts.Routes = routes
	}
	// Start the nodes together: each waits for a quorum before it is ready.
	errs := make(chan error, n)
	for _, node := range c.Nodes {
		go func() {
			opts := node.opts
			srv, err := server.NewServer(&opts)
			if err != nil {
				errs <- err
				return
			}
			srv.Start()
			node.srv = srv
			errs <- nil
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			tb.Fatalf("natstest: start cluster: %v", err)
		}
	}
	tb.Cleanup(c.Shutdown)
	for _, node := range c.Nodes {
		if !node.srv.ReadyForConnections(readyTimeout) {
			tb.Fatalf("natstest: node %s not ready", node.opts.ServerName)
		}
	}
	c.WaitLeader()
	return c
}

// URLs is every node's client URL, comma-separated (the --nats-url form).
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.Nodes))
	for i, node := range c.Nodes {
		urls[i] = node.URL()
	}
	return strings.Join(urls, ",")
}

// WaitLeader waits until a running node sees a JetStream meta leader.
func (c *Cluster) WaitLeader() {
	tb := c.Nodes[0].tb
	tb.Helper()
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		for _, node := range c.Nodes {
			if node.srv != nil && node.srv.JetStreamIsLeader() {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("natstest: no JetStream meta leader after %s", readyTimeout)
}

// Shutdown stops every node.
func (c *Cluster) Shutdown() {
	for _, node := range c.Nodes {
		node.Shutdown()
	}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("natstest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
