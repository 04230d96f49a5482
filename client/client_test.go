// The client's own tests import the standard library only (the tests against the real decision
// API are in client/sidecartest), so that a program importing this package records no
// checksums of the sidecar's dependencies in its go.sum.
package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/client"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestFallbackWhenSidecarUnreachable(t *testing.T) {
	base := closedPort(t)
	req := tollgate.CheckRequest{VendorID: "7", Action: tollgate.ActionOrderCreate}
	for _, tc := range []struct {
		opts  []client.Option
		allow bool
	}{{nil, false}, {[]client.Option{client.WithFailClosed()}, false}, {[]client.Option{client.WithFailOpen()}, true}} {
		c, err := client.New(base, tc.opts...)
		must(t, err)
		d, err := c.Check(context.Background(), req)
		var ue *client.UnavailableError
		if !errors.As(err, &ue) || ue.Status != 0 {
			t.Fatalf("err = %v, want *UnavailableError", err)
		}
		if d.Allow != tc.allow || d.Code != client.CodeSidecarUnavailable || d.Reason == "" {
			t.Fatalf("decision = %+v, want allow=%v", d, tc.allow)
		}
		res, err := c.CheckBatch(context.Background(), []tollgate.CheckRequest{req, req})
		if !errors.As(err, &ue) || len(res) != 2 || res[1].Allow != tc.allow || res[1].Code != client.CodeSidecarUnavailable {
			t.Fatalf("batch = %+v, %v", res, err)
		}
		if _, err := c.Tiers(context.Background()); !errors.As(err, &ue) {
			t.Fatalf("tiers: %v", err)
		}
	}
}

func TestFallbackOn5xxAndTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"error":{"code":"internal","message":"Internal error"}}`)
	}))
	t.Cleanup(srv.Close)

	c, err := client.New(srv.URL, client.WithFailOpen())
	must(t, err)
	d, err := c.Check(context.Background(), tollgate.CheckRequest{VendorID: "7", Action: "order.create"})
	var ue *client.UnavailableError
	if !errors.As(err, &ue) || ue.Status != 500 || !d.Allow || d.Code != client.CodeSidecarUnavailable {
		t.Fatalf("5xx: %+v, %v", d, err)
	}

	slow := make(chan struct{})
	slowSrv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-slow }))
	t.Cleanup(slowSrv.Close)
	t.Cleanup(func() { close(slow) }) // runs first: lets the handler end so Close can return
	c, err = client.New(slowSrv.URL, client.WithCheckTimeout(50*time.Millisecond))
	must(t, err)
	start := time.Now()
	d, err = c.Check(context.Background(), tollgate.CheckRequest{VendorID: "7", Action: "order.create"})
	if !errors.As(err, &ue) || !errors.Is(err, context.DeadlineExceeded) || d.Allow || time.Since(start) > 2*time.Second {
		t.Fatalf("timeout: %+v, %v after %v", d, err, time.Since(start))
	}
}

func TestNewRefusesBadBaseURL(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8181", "ftp://x", "http://"} {
		if _, err := client.New(u); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}
