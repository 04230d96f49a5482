package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The flag tables of docs/configuration.md are generated from the commands themselves (`make
// docs` runs the hidden `tollgate docs`), and a test fails when the file is out of date, so the
// manual cannot drift from the flags.
const (
	flagsBegin = "<!-- flags:begin (generated from the commands by `make docs`; do not edit by hand) -->"
	flagsEnd   = "<!-- flags:end -->"
)

func newDocsCommand() *cobra.Command {
	var check bool
	cmd := &cobra.Command{
		Use:    "docs FILE",
		Short:  "Rewrite the generated flag tables in FILE (docs/configuration.md)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			old, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("docs: %w", err)
			}
			updated, err := spliceFlagTables(old, flagTables(cmd.Root()))
			if err != nil {
				return fmt.Errorf("docs: %s: %w", args[0], err)
			}
			if check {
				if !bytes.Equal(old, updated) {
					return fmt.Errorf("docs: %s is out of date: run make docs", args[0])
				}
				return nil
			}
			if err := os.WriteFile(args[0], updated, 0o644); err != nil {
				return fmt.Errorf("docs: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "only report whether FILE is up to date")
	return cmd
}

// flagTables is a markdown table of the flags of every visible command, serve first.
func flagTables(root *cobra.Command) string {
	var cmds []*cobra.Command
	for _, c := range root.Commands() {
		if c.IsAvailableCommand() && c.Name() != "help" && c.Name() != "completion" {
			if c.Name() == "serve" {
				cmds = append([]*cobra.Command{c}, cmds...)
			} else {
				cmds = append(cmds, c)
			}
		}
	}
	var b strings.Builder
	for _, c := range cmds {
		fmt.Fprintf(&b, "\n### `tollgate %s`\n\n%s.\n", c.Use, c.Short)
		rows := 0
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Hidden || f.Deprecated != "" || f.Name == "help" {
				return
			}
			if rows == 0 {
				b.WriteString("\n| flag | environment | default | meaning |\n| --- | --- | --- | --- |\n")
			}
			rows++
			usage := strings.TrimSuffix(f.Usage, " (env "+envName(f.Name)+")")
			def := f.DefValue
			if def == "" || def == "[]" {
				def = "–"
			} else {
				def = "`" + def + "`"
			}
			fmt.Fprintf(&b, "| `--%s` | `%s` | %s | %s |\n", f.Name, envName(f.Name), def, cell(usage))
		})
		if rows == 0 {
			b.WriteString("\nNo flags.\n")
		}
	}
	return b.String()
}

// cell makes text safe inside a markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// spliceFlagTables replaces what lies between the markers in doc by tables.
func spliceFlagTables(doc []byte, tables string) ([]byte, error) {
	s := string(doc)
	i, j := strings.Index(s, flagsBegin), strings.Index(s, flagsEnd)
	if i < 0 || j < i {
		return nil, errors.New("no " + flagsBegin + " ... " + flagsEnd + " block")
	}
	return []byte(s[:i+len(flagsBegin)] + "\n" + tables + "\n" + s[j:]), nil
}
