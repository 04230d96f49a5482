package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The test binary doubles as the tollgate binary: with TOLLGATE_TEST_MAIN=1 it runs main()
// with the arguments after "--". Crash tests start it as a real child process and kill -9 it.
func TestMain(m *testing.M) {
	if os.Getenv("TOLLGATE_TEST_MAIN") == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{"tollgate"}, os.Args[i+1:]...)
				break
			}
		}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// child is a running `tollgate serve` process.
type child struct {
	cmd     *exec.Cmd
	api     string
	webhook string
	ops     string
	logs    *bytes.Buffer
}

// startServe starts `tollgate serve` on free loopback ports with the given extra flags and waits
// until /health/ready answers 200.
func startServe(t *testing.T, dataDir string, extra ...string) *child {
	t.Helper()
	c := &child{api: freeAddr(t), webhook: freeAddr(t), ops: freeAddr(t), logs: &bytes.Buffer{}}
	args := append([]string{"-test.run=^$", "--", "serve", "--data-dir", dataDir,
		"--listen", c.api, "--webhook-listen", c.webhook, "--ops-listen", c.ops,
		"--admin-token", testAdminToken, "--shutdown-timeout", "2s"}, extra...)
	c.cmd = exec.Command(os.Args[0], args...)
	c.cmd.Env = append(os.Environ(), "TOLLGATE_TEST_MAIN=1")
	c.cmd.Stdout = c.logs
	c.cmd.Stderr = c.logs
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + c.ops + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c
			}
		}
		if c.cmd.ProcessState != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("tollgate serve did not become ready; logs:\n%s", c.logs.String())
	return nil
}

// kill9 kills the child with SIGKILL: no shutdown hook runs.
func (c *child) kill9(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
}

const testAdminToken = "test-admin-token-123456"

// do sends a JSON request and decodes the JSON answer into out (when non-nil).
func do(ctx context.Context, client *http.Client, method, url string, body any, out any) (int, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if strings.Contains(url, "/v1/vendors/") && method != http.MethodGet {
		req.Header.Set("Authorization", "Bearer "+testAdminToken)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s: %w", data, err)
		}
	}
	return resp.StatusCode, nil
}
