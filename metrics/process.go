package metrics

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tollgate-pdp/tollgate"
)

// processSampler tracks the process's peak CPU use: utilisation only exists over an interval,
// so a goroutine (RunSampler) samples CPU time every interval and keeps the highest rate seen.
// Peak memory needs no sampling: the kernel keeps the resident high-water mark (ru_maxrss).
type processSampler struct {
	mu       sync.Mutex
	interval time.Duration
	lastCPU  float64
	lastAt   time.Time
	peakCPU  float64
}

// cpuSeconds is the process's user+system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// peakResidentBytes is the resident high-water mark (ru_maxrss is in KiB on Linux).
func peakResidentBytes() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024
}

// residentBytes reads VmRSS from /proc/self/status (0 where there is no procfs).
func residentBytes() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			v = bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return 0
			}
			return n * 1024
		}
	}
	return 0
}

func (p *processSampler) sample(now time.Time) {
	cpu := cpuSeconds()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.lastAt.IsZero() {
		if dt := now.Sub(p.lastAt).Seconds(); dt > 0 {
			p.peakCPU = max(p.peakCPU, (cpu-p.lastCPU)/dt)
		}
	}
	p.lastCPU, p.lastAt = cpu, now
}

// RunSampler samples CPU use every interval (default 5s) until ctx is done, for the peak CPU
// figure of the capacity snapshot and tollgate_process_peak_cpu_cores.
func (m *Metrics) RunSampler(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	m.proc.mu.Lock()
	m.proc.interval = interval
	m.proc.mu.Unlock()
	m.proc.sample(time.Now())
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			m.proc.sample(now)
		}
	}
}

func (m *Metrics) processFigures() tollgate.CapacityProcess {
	m.proc.mu.Lock()
	peak, interval := m.proc.peakCPU, m.proc.interval
	m.proc.mu.Unlock()
	out := tollgate.CapacityProcess{CPUSecondsTotal: cpuSeconds(), PeakCPUCores: peak,
		ResidentBytes: residentBytes(), PeakResidentBytes: peakResidentBytes()}
	if interval > 0 {
		out.SampleInterval = interval.String()
	}
	return out
}

// peakCollector exports the peaks; the process collector already has the current values.
type peakCollector struct {
	m        *Metrics
	cpu, rss *prometheus.Desc
}

func newPeakCollector(m *Metrics) *peakCollector {
	return &peakCollector{m: m,
		cpu: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "process", "peak_cpu_cores"),
			"Highest CPU use of the process over one sampling interval since it started, in cores (CPU seconds per second).", nil, nil),
		rss: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "process", "peak_resident_memory_bytes"),
			"Highest resident memory of the process since it started (the kernel's high-water mark), in bytes.", nil, nil),
	}
}

func (c *peakCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.cpu
	ch <- c.rss
}

func (c *peakCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.proc.mu.Lock()
	peak := c.m.proc.peakCPU
	c.m.proc.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(c.cpu, prometheus.GaugeValue, peak)
	ch <- prometheus.MustNewConstMetric(c.rss, prometheus.GaugeValue, float64(peakResidentBytes()))
}
