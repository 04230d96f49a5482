package proc

import (
	"os"
	"testing"
	"time"
)

// counters is what the harness reads around a run, for this process.
type counters struct {
	cpu, self time.Duration
	reads     int64
}

func readCounters(t *testing.T) counters {
	t.Helper()
	pid := os.Getpid()
	u, s, err := CPUTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	self, _, err := SelfCPUTime()
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := Syscalls(pid)
	if err != nil {
		t.Fatal(err)
	}
	return counters{cpu: u + s, self: self, reads: r}
}

func TestCountersOfThisProcessGrow(t *testing.T) {
	before := readCounters(t)
	// Burn CPU past several 10 ms ticks, and make read system calls.
	x := uint64(1)
	for start := time.Now(); time.Since(start) < 100*time.Millisecond; {
		x = x*6364136223846793005 + 1442695040888963407
	}
	for range 10 {
		if _, err := os.ReadFile("/proc/self/stat"); err != nil {
			t.Fatal(err)
		}
	}
	after := readCounters(t)
	if got := after.cpu - before.cpu; got < 50*time.Millisecond {
		t.Errorf("/proc CPU time grew by %v over 100 ms of spinning (x=%d)", got, x)
	}
	if got := after.self - before.self; got < 50*time.Millisecond {
		t.Errorf("getrusage user time grew by %v over 100 ms of spinning", got)
	}
	if got := after.reads - before.reads; got < 10 {
		t.Errorf("read system calls grew by %d over 10 file reads", got)
	}
	v, i, err := ContextSwitches(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if v+i == 0 {
		t.Error("no context switches counted for a running test process")
	}
}

func TestCPUTimeOfMissingProcess(t *testing.T) {
	if _, _, err := CPUTime(1 << 30); err == nil {
		t.Fatal("no error for a pid that does not exist")
	}
}
