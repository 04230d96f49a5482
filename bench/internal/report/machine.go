// Package report holds what both benchmark programs print: machine notes and formatting.
package report

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Machine describes the host the numbers were measured on.
func Machine() string {
	cpu := "unknown"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	kernel := "unknown"
	if b, err := exec.Command("uname", "-sr").Output(); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	mem := "unknown"
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		if sc.Scan() {
			mem = strings.Join(strings.Fields(sc.Text())[1:], " ")
		}
		f.Close()
	}
	return fmt.Sprintf("%d CPUs (%s), %s RAM, %s, %s, GOMAXPROCS=%d, measured %s",
		runtime.NumCPU(), cpu, mem, kernel, runtime.Version(), runtime.GOMAXPROCS(0),
		time.Now().UTC().Format(time.RFC3339))
}

// Dur formats a latency in µs with 1 decimal (ms above 10 ms).
func Dur(d time.Duration) string {
	if d >= 10*time.Millisecond {
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}

// Bytes formats a byte count in KiB/MiB.
func Bytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
}

// LoadAvg is /proc/loadavg's 1, 5 and 15 minute figures ("" if unreadable): the machine is
// shared, and a load above the CPU count means the numbers include waiting for a CPU.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// Tree names the source the servers were built from: the commit, and "+ uncommitted changes to"
// the files that differ from it (other work in progress is compiled in then).
func Tree(repo string) string {
	describe := exec.Command("git", "describe", "--always")
	describe.Dir = repo
	b, err := describe.Output()
	if err != nil {
		return "unknown"
	}
	rev := strings.TrimSpace(string(b))
	// The harnesses' own outputs (bench/results, BENCHMARKS.md) are rewritten by every run, so
	// they do not make the measured tree a different one; any other change does, and is named.
	status := exec.Command("git", "status", "--porcelain", "--untracked-files=no", "--", ".",
		":(exclude)bench/results", ":(exclude)BENCHMARKS.md")
	status.Dir = repo
	if b, err = status.Output(); err != nil {
		return rev + " + unknown changes"
	}
	var changed []string
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if len(line) > 3 {
			changed = append(changed, line[3:])
		}
	}
	if len(changed) == 0 {
		return rev
	}
	return rev + " + uncommitted changes to " + strings.Join(changed, ", ")
}
