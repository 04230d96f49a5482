package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// envName is the environment variable that sets a flag: --webhook-listen → TOLLGATE_WEBHOOK_LISTEN.
func envName(flag string) string {
	return "TOLLGATE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// bindEnv sets every flag not given on the command line from its environment variable, so that
// flags win over the environment and the environment over defaults.
func bindEnv(cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "help" {
			return
		}
		v, ok := os.LookupEnv(envName(f.Name))
		if !ok {
			return
		}
		if setErr := f.Value.Set(v); setErr != nil {
			err = fmt.Errorf("environment %s: %w", envName(f.Name), setErr)
		}
	})
	return err
}

// withEnvHelp appends the environment variable to each flag's usage line.
func withEnvHelp(cmd *cobra.Command) {
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" {
			f.Usage += " (env " + envName(f.Name) + ")"
		}
	})
}
