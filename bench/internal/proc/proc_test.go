package proc

import (
	"os"
	"testing"
	"time"
)

func TestCountersOfThisProcessGrow(t *testing.T) {
	pid := os.Getpid()
	u0, s0, err := CPUTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	su0, _, err := SelfCPUTime()
	if err != nil {
		t.Fatal(err)
	}
	r0, _, err := Syscalls(pid)
	if err != nil {
		t.Fatal(err)
	}
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
	u1, s1, err := CPUTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	su1, _, err := SelfCPUTime()
	if err != nil {
		t.Fatal(err)
	}
	r1, _, err := Syscalls(pid)
	if err != nil {
		t.Fatal(err)
	}
	if got := (u1 + s1) - (u0 + s0); got < 50*time.Millisecond {
		t.Errorf("/proc CPU time grew by %v over 100 ms of spinning (x=%d)", got, x)
	}
	if got := su1 - su0; got < 50*time.Millisecond {
		t.Errorf("getrusage user time grew by %v over 100 ms of spinning", got)
	}
	if r1-r0 < 10 {
		t.Errorf("read system calls grew by %d over 10 file reads", r1-r0)
	}
	v, i, err := ContextSwitches(pid)
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
