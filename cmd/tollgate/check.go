package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/client"
)

// checkFlags are the request fields of `tollgate check`, plus how to reach the sidecar.
type checkFlags struct {
	addr        string
	platform    string
	count       int64
	customCount int64
	quantity    int64
	months      int64
	feature     string
	custom      bool
	consume     bool
	key         string
	explain     bool
	asJSON      bool
	timeout     time.Duration
}

func newCheckCommand() *cobra.Command {
	var f checkFlags
	cmd := &cobra.Command{
		Use:   "check VENDOR_ID ACTION",
		Short: "Ask a running sidecar for a decision and print it readably",
		Long: `Check asks a running tollgate (its decision API, --addr) whether a vendor may do an
action, and prints the decision. The exit code is 0 when allowed, 1 when denied, 2 on error, so
scripts can use it directly.

  tollgate check demo-essential-at-limit order.create
  tollgate check demo-business feature.use --feature api_access`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := bindEnv(cmd); err != nil {
				return err
			}
			req := tollgate.CheckRequest{VendorID: tollgate.VendorID(args[0]), Action: args[1],
				Platform: f.platform, Feature: f.feature, Custom: f.custom, Consume: f.consume,
				IdempotencyKey: f.key, Explain: f.explain}
			set := func(name string, v int64) *int64 {
				if cmd.Flags().Changed(name) {
					return &v
				}
				return nil
			}
			req.Count, req.CustomCount = set("count", f.count), set("custom-count", f.customCount)
			req.Quantity, req.Months = set("quantity", f.quantity), set("months", f.months)
			if err := req.Validate(); err != nil {
				return err
			}
			c, err := client.New("http://"+f.addr, client.WithCheckTimeout(f.timeout))
			if err != nil {
				return err
			}
			d, err := c.Check(cmd.Context(), req)
			if err != nil {
				return err
			}
			if err := printDecision(cmd.OutOrStdout(), &req, &d, f.asJSON); err != nil {
				return err
			}
			if !d.Allow {
				return &exitError{code: 1, err: fmt.Errorf("denied: %s", d.Code)}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", "127.0.0.1:8181", "the sidecar's decision API address")
	fl.StringVar(&f.platform, "platform", "", "platform whose tiers apply")
	fl.Int64Var(&f.count, "count", 0, "current count (products, team members, CMS pages)")
	fl.Int64Var(&f.customCount, "custom-count", 0, "current custom CMS pages")
	fl.Int64Var(&f.quantity, "quantity", 1, "orders to place (order.create)")
	fl.Int64Var(&f.months, "months", 0, "months of order history to view")
	fl.StringVar(&f.feature, "feature", "", "feature to use (feature.use)")
	fl.BoolVar(&f.custom, "custom", false, "the CMS page is a custom page")
	fl.BoolVar(&f.consume, "consume", false, "count the orders when allowed (order.create)")
	fl.StringVar(&f.key, "idempotency-key", "", "with --consume: never count the same key twice")
	fl.BoolVar(&f.explain, "explain", false, "also print the input document the policy saw")
	fl.BoolVar(&f.asJSON, "json", false, "print the decision as JSON")
	fl.DurationVar(&f.timeout, "timeout", 2*time.Second, "how long to wait for the sidecar")
	withEnvHelp(cmd)
	return cmd
}

func printDecision(w io.Writer, req *tollgate.CheckRequest, d *tollgate.Decision, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	}
	verdict := "ALLOW"
	if !d.Allow {
		verdict = "DENY"
	}
	fmt.Fprintf(w, "%s  vendor %s  %s  (%s)\n", verdict, req.VendorID, req.Action, d.Code)
	if d.Reason != "" {
		fmt.Fprintf(w, "  reason:     %s\n", d.Reason)
	}
	if d.Tier != "" || d.Status != "" {
		fmt.Fprintf(w, "  plan:       %s (%s)\n", d.Tier, d.Status)
	}
	if d.Limit != nil {
		fmt.Fprintf(w, "  usage:      %d of %d used, %d remaining\n", d.Used, *d.Limit, derefInt(d.Remaining))
	} else if d.Code != tollgate.CodeUnknownVendor && d.Code != tollgate.CodeUnknownAction {
		fmt.Fprintf(w, "  usage:      %d used, no limit\n", d.Used)
	}
	if d.UpgradeTo != nil {
		fmt.Fprintf(w, "  upgrade to: %s\n", *d.UpgradeTo)
	}
	if d.Replayed {
		fmt.Fprintln(w, "  replayed:   same idempotency key seen before; nothing counted")
	}
	if d.Stale {
		fmt.Fprintln(w, "  stale:      the sidecar has not heard from Stripe recently")
	}
	fmt.Fprintf(w, "  decision:   %s\n", d.DecisionID)
	if d.Explain != nil {
		fmt.Fprintf(w, "  policy:     %s (catalog %s)\n  input:      %s\n", d.Explain.PolicyRevision, d.Explain.CatalogRevision, d.Explain.Input)
	}
	return nil
}

func derefInt(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}
