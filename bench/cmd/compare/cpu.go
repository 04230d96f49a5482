package main

import (
	"time"

	"github.com/tollgate-pdp/tollgate/bench/internal/proc"
)

// cpuUse is the CPU time one measured run cost the server under test and the load generator
// (this process), per request. It shows where a lower throughput comes from on a machine whose
// CPUs the client and the server share.
type cpuUse struct {
	serverUser, serverSys, clientUser, clientSys time.Duration
	// The server's system calls and context switches (per request after minus).
	reads, writes, voluntary, involuntary float64
}

func readCPU(pid int) (cpuUse, error) {
	var u cpuUse
	var err error
	if u.serverUser, u.serverSys, err = proc.CPUTime(pid); err != nil {
		return u, err
	}
	if u.clientUser, u.clientSys, err = proc.SelfCPUTime(); err != nil {
		return u, err
	}
	r, w, err := proc.Syscalls(pid)
	if err != nil {
		return u, err
	}
	v, i, err := proc.ContextSwitches(pid)
	u.reads, u.writes, u.voluntary, u.involuntary = float64(r), float64(w), float64(v), float64(i)
	return u, err
}

// minus is the use between before and u, divided by the run's requests.
func (u cpuUse) minus(before cpuUse, requests int) cpuUse {
	n := time.Duration(max(requests, 1))
	f := float64(n)
	return cpuUse{
		reads:       (u.reads - before.reads) / f,
		writes:      (u.writes - before.writes) / f,
		voluntary:   (u.voluntary - before.voluntary) / f,
		involuntary: (u.involuntary - before.involuntary) / f,
		serverUser:  (u.serverUser - before.serverUser) / n,
		serverSys:   (u.serverSys - before.serverSys) / n,
		clientUser:  (u.clientUser - before.clientUser) / n,
		clientSys:   (u.clientSys - before.clientSys) / n,
	}
}
