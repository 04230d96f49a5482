// Command tollgate is the entitlement sidecar: it serves decisions, keeps subscription state in
// step with Stripe, and has the operator tools (check, import, version).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		code := exitCode(err)
		if code != 1 { // 1 is a denied check, already printed as the answer
			fmt.Fprintln(os.Stderr, "tollgate:", err)
		}
		os.Exit(code)
	}
}

// exitError carries a specific exit code (e.g. a denied `check` exits 1 for scripts).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	if e := (*exitError)(nil); errors.As(err, &e) {
		return e.code
	}
	return 2
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "tollgate",
		Short:         "Entitlement sidecar: Stripe subscription state in bbolt, decisions by Rego policy",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newServeCommand(), newCheckCommand(), newImportCommand(), newSnapshotCommand(),
		newBackfillCommand(), newReplayCommand(), newVersionCommand(),
		newBackupCommand(), newCheckStoreCommand(), newDocsCommand())
	return root
}

// newLogger returns the JSON logger every command uses.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "tollgate", version)
			return err
		},
	}
}
