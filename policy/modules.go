package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// sources is a policy module set: file name → Rego text.
type sources map[string]string

// isPolicyFile says which files of a directory are policy: *.rego but not tests (a test file
// adds test_ rules, which have no business in the served data tree) and not hidden entries
// (Kubernetes ConfigMap volumes keep their real files under ..data and ..<timestamp>).
func isPolicyFile(name string) bool {
	return strings.HasSuffix(name, ".rego") && !strings.HasSuffix(name, "_test.rego") &&
		!strings.HasPrefix(name, ".")
}

// embeddedSources returns the built-in policy.
func embeddedSources() (sources, error) {
	entries, err := fs.ReadDir(defaultRego, "rego")
	if err != nil {
		return nil, fmt.Errorf("read embedded policy: %w", err)
	}
	out := sources{}
	for _, e := range entries {
		if !isPolicyFile(e.Name()) {
			continue
		}
		b, err := fs.ReadFile(defaultRego, "rego/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("read embedded policy %s: %w", e.Name(), err)
		}
		out[e.Name()] = string(b)
	}
	return out, nil
}

// loadSources returns the embedded policy with the .rego files of dir added, a file of the same
// name replacing the embedded one. dir == "" means the embedded policy alone. Files are read
// through symlinks, so a ConfigMap's atomic ..data swap is seen as one consistent set.
func loadSources(dir string) (sources, error) {
	out, err := embeddedSources()
	if err != nil {
		return nil, err
	}
	if dir == "" {
		return out, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read policy dir %s: %w", dir, err)
	}
	for _, e := range entries {
		if !isPolicyFile(e.Name()) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed (or a dangling symlink) between the listing and the read
			}
			return nil, fmt.Errorf("read policy file %s: %w", path, err)
		}
		if st, err := os.Stat(path); err == nil && st.IsDir() {
			continue
		}
		out[e.Name()] = string(b)
	}
	return out, nil
}

// hash is a content hash of the module set, independent of map order.
func (s sources) hash() string {
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	slices.Sort(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%d:%s%d:%s", len(n), n, len(s[n]), s[n])
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// compile parses (Rego v1) and compiles the module set.
func (s sources) compile() (*ast.Compiler, error) {
	modules := make(map[string]*ast.Module, len(s))
	for name, src := range s {
		m, err := ast.ParseModuleWithOpts(name, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		modules[name] = m
	}
	c := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	if c.Compile(modules); c.Failed() {
		return nil, fmt.Errorf("compile policy: %w", c.Errors)
	}
	return c, nil
}
