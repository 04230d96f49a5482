// Package decisionlog writes the decision log (--decision-log): one JSON line per decision,
// with masking (JSON pointers) and sampling of allowed decisions. It implements
// tollgate.DecisionLogger and never slows a decision: entries go through a bounded buffer to
// one writer goroutine, and an entry that finds the buffer full is dropped and counted
// (tollgate_decision_log_dropped_total) instead of waiting.
package decisionlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tollgate-pdp/tollgate"
)

// DefaultBuffer is the number of entries the log holds before it drops.
const DefaultBuffer = 8192

// Mask replaces a masked value.
const Mask = "***"

// Options configure New.
type Options struct {
	// Writer receives the JSON lines. Required.
	Writer io.Writer
	// Masks are JSON pointers (RFC 6901) into an entry, e.g. "/request/feature"; a value found
	// there is replaced by "***". Pointers to absent values are ignored.
	Masks []string
	// SampleRate is the share (0..1) of allowed decisions logged; denials are always logged.
	SampleRate float64
	// Buffer bounds the entries waiting to be written (default DefaultBuffer).
	Buffer int
	// Logger receives write errors; nil: slog.Default().
	Logger *slog.Logger
}

// Log is a running decision log. Close it to write what is buffered.
type Log struct {
	w       *bufio.Writer
	masks   [][]string
	rate    float64
	log     *slog.Logger
	ch      chan *tollgate.DecisionLogEntry
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	dropped atomic.Uint64
	written atomic.Uint64
}

var _ tollgate.DecisionLogger = (*Log)(nil)

// New validates the options and starts the writer goroutine.
func New(opts Options) (*Log, error) {
	if opts.Writer == nil {
		return nil, fmt.Errorf("decision log: a writer is required")
	}
	if opts.SampleRate < 0 || opts.SampleRate > 1 {
		return nil, fmt.Errorf("decision log: sample rate must be between 0 and 1, got %v", opts.SampleRate)
	}
	masks := make([][]string, 0, len(opts.Masks))
	for _, m := range opts.Masks {
		p, err := ParsePointer(m)
		if err != nil {
			return nil, fmt.Errorf("decision log: mask %q: %w", m, err)
		}
		masks = append(masks, p)
	}
	if opts.Buffer <= 0 {
		opts.Buffer = DefaultBuffer
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	l := &Log{w: bufio.NewWriterSize(opts.Writer, 64<<10), masks: masks, rate: opts.SampleRate,
		log: opts.Logger, ch: make(chan *tollgate.DecisionLogEntry, opts.Buffer), stop: make(chan struct{}), done: make(chan struct{})}
	go l.run()
	return l, nil
}

// Sample implements tollgate.DecisionLogger: denials always, allowed decisions at the rate.
func (l *Log) Sample(allow bool) bool {
	switch {
	case !allow || l.rate >= 1:
		return true
	case l.rate <= 0:
		return false
	}
	return rand.Float64() < l.rate
}

// Log implements tollgate.DecisionLogger. It never waits: a full buffer drops the entry.
func (l *Log) Log(e *tollgate.DecisionLogEntry) {
	select {
	case l.ch <- e:
	default:
		l.dropped.Add(1)
	}
}

// Dropped is the number of entries dropped because the buffer was full.
func (l *Log) Dropped() uint64 { return l.dropped.Load() }

// Written is the number of entries written.
func (l *Log) Written() uint64 { return l.written.Load() }

// Close writes the buffered entries, flushes and stops the writer. Entries logged after Close
// are never written (the channel is never closed, so a late Log cannot panic). Idempotent.
func (l *Log) Close() error {
	l.once.Do(func() { close(l.stop) })
	<-l.done
	return nil
}

func (l *Log) run() {
	defer close(l.done)
	var buf bytes.Buffer
	for {
		select {
		case e := <-l.ch:
			l.write(&buf, e)
		case <-l.stop:
			for {
				select {
				case e := <-l.ch:
					l.write(&buf, e)
				default:
					if err := l.w.Flush(); err != nil {
						l.log.Error("decision log: flush", "err", err)
					}
					return
				}
			}
		}
	}
}

func (l *Log) write(buf *bytes.Buffer, e *tollgate.DecisionLogEntry) {
	{
		buf.Reset()
		if err := l.encode(buf, e); err != nil {
			l.log.Error("decision log: encode", "decision_id", e.DecisionID, "err", err)
			return
		}
		if _, err := l.w.Write(buf.Bytes()); err != nil {
			l.log.Error("decision log: write", "err", err)
			return
		}
		l.written.Add(1)
		// Flush when idle, so a quiet sidecar's log is current and a busy one writes in blocks.
		if len(l.ch) == 0 {
			if err := l.w.Flush(); err != nil {
				l.log.Error("decision log: flush", "err", err)
			}
		}
	}
}

// encode writes one line: the entry as JSON, with the masks applied.
func (l *Log) encode(buf *bytes.Buffer, e *tollgate.DecisionLogEntry) error {
	if len(l.masks) == 0 {
		// Straight into the reused buffer: no reflection and nothing allocated per entry.
		b, err := e.AppendJSON(buf.AvailableBuffer())
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte('\n')
		return nil
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return err
	}
	for _, m := range l.masks {
		doc = mask(doc, m)
	}
	if b, err = json.Marshal(doc); err != nil {
		return err
	}
	buf.Write(b)
	buf.WriteByte('\n')
	return nil
}

// ParsePointer reads a JSON pointer ("/request/feature"; "" is the whole document, which
// cannot be masked).
func ParsePointer(s string) ([]string, error) {
	if !strings.HasPrefix(s, "/") {
		return nil, fmt.Errorf("a JSON pointer starts with /")
	}
	parts := strings.Split(s[1:], "/")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
	}
	return parts, nil
}

// mask replaces the value at path in doc, when present, by Mask.
func mask(doc any, path []string) any {
	if len(path) == 0 {
		return Mask
	}
	switch x := doc.(type) {
	case map[string]any:
		if v, ok := x[path[0]]; ok {
			x[path[0]] = mask(v, path[1:])
		}
	case []any:
		if i, err := strconv.Atoi(path[0]); err == nil && i >= 0 && i < len(x) {
			x[i] = mask(x[i], path[1:])
		}
	}
	return doc
}
