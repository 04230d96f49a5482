package report

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestTreeNamesChangesButNotTheHarnessOutputs(t *testing.T) {
	repo := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		cmd.Dir = repo
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(repo, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("init", "-q")
	write("main.go", "package main\n")
	write("BENCHMARKS.md", "# numbers\n")
	write("bench/results/compare.md", "table\n")
	git("add", ".")
	git("commit", "-qm", "first")
	rev := git("rev-parse", "--short", "HEAD")

	if got := Tree(repo); got != rev {
		t.Fatalf("clean tree: Tree = %q, want %q", got, rev)
	}
	write("bench/results/compare.md", "another table\n")
	write("BENCHMARKS.md", "# other numbers\n")
	write("notes.txt", "untracked\n")
	if got := Tree(repo); got != rev {
		t.Fatalf("only outputs and an untracked file changed: Tree = %q, want %q", got, rev)
	}
	write("main.go", "package main // changed\n")
	if got, want := Tree(repo), rev+" + uncommitted changes to main.go"; got != want {
		t.Fatalf("source changed: Tree = %q, want %q", got, want)
	}
	if got := Tree(t.TempDir()); got != "unknown" {
		t.Fatalf("not a repository: Tree = %q, want unknown", got)
	}
}
