// Package proc starts, watches and stops the benchmark's child processes (servers under test),
// all on loopback, and reads their resident memory.
package proc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("release port %s: %w", addr, err)
	}
	return addr, nil
}

// Process is a started child.
type Process struct {
	Name    string
	Cmd     *exec.Cmd
	Started time.Time
	LogPath string
	done    chan struct{}
	waitErr error
	log     *slog.Logger
}

// Start runs bin with args; stdout and stderr go to <logDir>/<name>.log.
func Start(name, logDir, bin string, args []string, env []string, log *slog.Logger) (*Process, error) {
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	// Own process group: a Ctrl-C of the harness is handled by the harness, which stops its
	// children itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &Process{Name: name, Cmd: cmd, LogPath: logPath, done: make(chan struct{}), log: log}
	p.Started = time.Now()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	log.Info("started", "process", name, "pid", cmd.Process.Pid, "args", strings.Join(args, " "))
	return p, nil
}

// Pid is the child's process id.
func (p *Process) Pid() int { return p.Cmd.Process.Pid }

// Exited reports whether the child has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM, waits up to grace, then SIGKILLs. Safe to call more than once.
func (p *Process) Stop(grace time.Duration) {
	if p == nil || p.Exited() {
		return
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.Cmd.Process.Kill()
		<-p.done
	}
	p.log.Info("stopped", "process", p.Name, "pid", p.Pid())
}

// Tail returns the last lines of the child's log, for error messages.
func (p *Process) Tail(n int) string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WaitReady polls url every interval until it answers 200, the child exits, or timeout. It
// returns the time from process start to the first 200.
func (p *Process) WaitReady(ctx context.Context, url string, interval, timeout time.Duration) (time.Duration, error) {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, fmt.Errorf("%s ready probe: %w", p.Name, err)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(p.Started), nil
			}
		}
		if p.Exited() {
			return 0, fmt.Errorf("%s exited before ready (%v); log:\n%s", p.Name, p.waitErr, p.Tail(20)) //nolint:errorlint // the exit status, nil when 0
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s not ready at %s after %s; log:\n%s", p.Name, url, timeout, p.Tail(20))
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%s ready probe: %w", p.Name, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// RSSBytes reads VmRSS of pid from /proc.
func RSSBytes(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("read rss: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "VmRSS:") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			break
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse VmRSS %q: %w", line, err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read rss: %w", err)
	}
	return 0, errors.New("read rss: no VmRSS line")
}

// GoBuild builds pkg (run from dir) into out.
func GoBuild(ctx context.Context, dir, out, pkg string, log *slog.Logger) error {
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	log.Info("built", "package", pkg, "seconds", time.Since(start).Seconds())
	return nil
}

// CPUTime is the user and system CPU time pid has used so far, from /proc/<pid>/stat (in
// clock ticks of 10 ms: USER_HZ is 100 in Linux's user-space ABI).
func CPUTime(pid int) (user, system time.Duration, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("read cpu time: %w", err)
	}
	// The command name (field 2) may hold spaces; the fields after it are counted from its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("read cpu time: no ')' in %q", s)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("read cpu time: %d fields after the command name", len(f))
	}
	const tick = 10 * time.Millisecond
	u, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("read cpu time: utime %q: %w", f[11], err)
	}
	st, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("read cpu time: stime %q: %w", f[12], err)
	}
	return time.Duration(u) * tick, time.Duration(st) * tick, nil
}

// SelfCPUTime is the user and system CPU time this process has used so far.
func SelfCPUTime() (user, system time.Duration, err error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano()), nil
}

// Syscalls is how many read-like and write-like system calls pid has made so far (syscr and
// syscw of /proc/<pid>/io, counted over all its threads).
func Syscalls(pid int) (reads, writes int64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	if err != nil {
		return 0, 0, fmt.Errorf("read syscall counts: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok || (k != "syscr" && k != "syscw") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("read syscall counts: %s %q: %w", k, v, err)
		}
		if k == "syscr" {
			reads = n
		} else {
			writes = n
		}
	}
	return reads, writes, nil
}

// ContextSwitches is how many times the threads pid has now were switched off a CPU, voluntarily
// (blocked) and not (preempted), summed over /proc/<pid>/task/*/status.
func ContextSwitches(pid int) (voluntary, involuntary int64, err error) {
	tasks, err := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/status")
	if err != nil {
		return 0, 0, fmt.Errorf("read context switches: %w", err)
	}
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // a thread that exited meanwhile
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			n, perr := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			switch {
			case perr != nil:
			case k == "voluntary_ctxt_switches":
				voluntary += n
			case k == "nonvoluntary_ctxt_switches":
				involuntary += n
			}
		}
	}
	return voluntary, involuntary, nil
}
