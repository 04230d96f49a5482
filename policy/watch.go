package policy

import (
	"context"
	"fmt"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Reload re-reads the policy directory and, when the module set changed, compiles it against
// the current catalog. Success swaps it in atomically; failure keeps the running policy, is
// logged, reported to the Observer and kept for LastError and the readiness detail.
func (e *Engine) Reload(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	cur := e.state.Load()
	src, err := loadSources(e.dir)
	if err != nil {
		return e.failed(cur.revision, fmt.Errorf("reload policy: %w", err))
	}
	h := src.hash()
	if h == cur.modulesHash {
		// Back to the module set in service (e.g. a broken file was removed): nothing to do.
		e.lastAttempt = h
		e.lastErr.Store(nil)
		return nil
	}
	rev := revisionOf(h, cur.catalogRevision)
	if h == e.lastAttempt {
		// This exact set already failed; report the same error without recompiling on every poll.
		if le := e.lastErr.Load(); le != nil {
			return le.err
		}
	}
	e.lastAttempt = h
	st, err := e.build(ctx, src, cur.catalog)
	if err != nil {
		return e.failed(rev, fmt.Errorf("reload policy %s: %w", rev, err))
	}
	e.swap(st)
	e.lastErr.Store(nil)
	e.observer.PolicyLoaded(st.revision, nil)
	e.log.Info("policy reloaded", append([]any{"revision", st.revision, "previous", cur.revision, "files", len(src)},
		st.evaluatorAttrs()...)...)
	return nil
}

func (e *Engine) failed(rev string, err error) error {
	e.lastErr.Store(&reloadError{revision: rev, err: err})
	e.observer.PolicyLoaded(rev, err)
	e.log.Error("policy reload failed; keeping the running policy", "revision", rev,
		"running", e.state.Load().revision, "err", err)
	return err
}

// Watch reloads the policy when PolicyDir changes, until ctx is done. It reacts to file events
// on the directory (which include a ConfigMap's ..data symlink swap, an event on the directory
// itself) and also re-reads the directory every PollInterval, for file systems that deliver no
// events. Without a PolicyDir it just waits for ctx.
func (e *Engine) Watch(ctx context.Context) error {
	if e.dir == "" {
		<-ctx.Done()
		return nil
	}
	var events <-chan fsnotify.Event
	var errs <-chan error
	w, err := fsnotify.NewWatcher()
	if err == nil {
		if err = w.Add(e.dir); err != nil {
			_ = w.Close()
		}
	}
	if err != nil {
		e.log.Warn("policy dir not watched for events; polling only", "dir", e.dir, "err", err)
	} else {
		defer w.Close()
		events, errs = w.Events, w.Errors
	}
	tick := time.NewTicker(e.poll)
	defer tick.Stop()
	// Editors and ConfigMap updates change several files in a burst: wait for quiet before
	// compiling, so the burst costs one compile.
	const settle = 100 * time.Millisecond
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			debounce.Reset(settle)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			e.log.Warn("policy dir watch error", "dir", e.dir, "err", err)
		case <-debounce.C:
			_ = e.Reload(ctx) // failures are reported by Reload
		case <-tick.C:
			_ = e.Reload(ctx)
		}
	}
}
