package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
)

// With TOLLGATE_TEST_PROFILE_DIR=D the child (the test binary running main(), see TestMain)
// writes a heap profile to D/heap-<n>.pb.gz on each SIGUSR1, after a GC so that inuse figures
// are the live heap at that moment. The soak test uses it to diff the heap between minutes;
// it is test code, so the tollgate binary has no profiling hook an operator did not ask for.
// init runs before TestMain, so before main().
func init() {
	dir := os.Getenv("TOLLGATE_TEST_PROFILE_DIR")
	if dir == "" || os.Getenv("TOLLGATE_TEST_MAIN") != "1" {
		return
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	go func() {
		for n := 1; ; n++ {
			<-sig
			runtime.GC()
			if err := writeHeapProfile(filepath.Join(dir, fmt.Sprintf("heap-%d.pb.gz", n))); err != nil {
				fmt.Fprintln(os.Stderr, "heap profile:", err)
			}
		}
	}()
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create heap profile: %w", err)
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("write heap profile: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close heap profile: %w", err)
	}
	return nil
}
