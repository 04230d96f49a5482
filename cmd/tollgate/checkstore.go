package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate-pdp/tollgate/cache"
)

func newCheckStoreCommand() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "check-store [FILE]",
		Short: "Check a store file (bbolt consistency and schema); exit 0 when healthy, 1 when not",
		Long: `Check-store opens a store file read-only and checks the tollgate marker and schema version,
every bucket, bbolt's page-level consistency, and that every vendor and usage record decodes.
FILE defaults to <data-dir>/tollgate.db; a backup can be checked the same way.

Exit status: 0 healthy, 1 not healthy (or locked by a running server: stop it, or check a
backup taken with "tollgate backup --addr"), 2 usage error. It never writes to the file.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := bindEnv(cmd); err != nil {
				return err
			}
			path := storePath(dataDir)
			if len(args) == 1 {
				path = args[0]
			}
			rep, err := cache.CheckFile(path, 2*time.Second)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "check-store: FAILED:", err)
				return &exitError{code: 1, err: err}
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "check-store %s: ok (schema %d, %d vendors, %d usage records)\n",
				path, rep.SchemaVersion, rep.Vendors, rep.UsageRecords)
			return err
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "./data", "directory of the store file")
	withEnvHelp(cmd)
	return cmd
}
