package main

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
)

// TestConfigurationDocIsGenerated fails when docs/configuration.md's flag tables differ from the
// commands' flags: a flag was added, renamed or reworded without `make docs`.
func TestConfigurationDocIsGenerated(t *testing.T) {
	const path = "../../docs/configuration.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := spliceFlagTables(doc, flagTables(newRootCommand(io.Discard, io.Discard)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, want) {
		t.Fatalf("%s is out of date: run make docs", path)
	}
	for _, s := range []string{"| `--listen` | `TOLLGATE_LISTEN` | `127.0.0.1:8181` |", "### `tollgate backup FILE`"} {
		if !strings.Contains(string(doc), s) {
			t.Errorf("%s lacks %q", path, s)
		}
	}
	if strings.Contains(string(doc), "| `--gc-headroom-mib`") {
		t.Errorf("%s lists the deprecated --gc-headroom-mib in a flag table", path)
	}
}

func TestSpliceFlagTablesNeedsItsMarkers(t *testing.T) {
	if _, err := spliceFlagTables([]byte("# no markers\n"), "x"); err == nil {
		t.Fatal("spliced a document without markers")
	}
	got, err := spliceFlagTables([]byte("a\n"+flagsBegin+"\nold\n"+flagsEnd+"\nb\n"), "new\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := "a\n" + flagsBegin + "\nnew\n\n" + flagsEnd + "\nb\n"; string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
