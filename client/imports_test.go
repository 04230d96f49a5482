package client_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportsStayStandardLibrary keeps the Go client light for its users: go mod tidy in a
// program importing package client records checksums for what this package, the root package
// and their tests import. Those must stay the standard library and tollgate's root package,
// so the program's go.sum holds nothing of the sidecar's dependencies (client/README.md).
func TestImportsStayStandardLibrary(t *testing.T) {
	for _, dir := range []string{".", ".."} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		must(t, err)
		if len(files) == 0 {
			t.Fatalf("no Go files in %s", dir)
		}
		for _, f := range files {
			parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			must(t, err)
			for _, imp := range parsed.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				first, _, _ := strings.Cut(path, "/")
				if strings.Contains(first, ".") && path != "github.com/tollgate-pdp/tollgate" && path != "github.com/tollgate-pdp/tollgate/client" {
					t.Errorf("%s imports %s: a Go client user's go.sum would get its module (move the test to client/sidecartest)", f, path)
				}
			}
		}
	}
}
