// Package fleet runs tollgate as a fleet: the sidecars of one application share one ordered
// log of every state change in a NATS JetStream stream, and each applies it to its own store.
// See README.md for the design.
package fleet

import (
	"strings"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

// Defaults of the serve flags.
const (
	DefaultName          = "tollgate"
	DefaultReplicas      = 3
	DefaultHistory       = 72 * time.Hour
	DefaultSnapshotEvery = 5 * time.Minute
	// DefaultDuplicateWindow is how long the stream remembers message ids: a Stripe event
	// delivered to two sidecars within it is stored once (a later copy is still applied once,
	// by the event id the store records).
	DefaultDuplicateWindow = 10 * time.Minute
)

// Config is the fleet part of `serve`'s configuration.
type Config struct {
	// URLs are the NATS servers, comma-separated (--nats-url). Empty: single mode.
	URLs string
	// Creds is a NATS credentials file (--nats-creds); CA, Cert and Key are PEM files for TLS
	// (--nats-ca, --nats-cert, --nats-key). All optional.
	Creds, CA, Cert, Key string
	// Name prefixes every stream, bucket and subject (--fleet), so several applications can
	// share one NATS.
	Name string
	// Replicas of the stream and the buckets (--fleet-replicas): 3 in production, 1 for tests
	// and the demo.
	Replicas int
	// History is how long the stream keeps messages (--fleet-history).
	History time.Duration
	// SnapshotEvery is how often a sidecar puts the state it applied into the snapshot store
	// (--fleet-snapshot-interval). It must be well below History.
	SnapshotEvery time.Duration
	// DuplicateWindow is the stream's message id memory (default DefaultDuplicateWindow).
	DuplicateWindow time.Duration
}

// Enabled reports whether fleet mode is configured.
func (c *Config) Enabled() bool { return strings.TrimSpace(c.URLs) != "" }

// Validate checks the configuration and fills defaults; the error names the flag at fault.
func (c *Config) Validate() error {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
	if c.History == 0 {
		c.History = DefaultHistory
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = DefaultSnapshotEvery
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	switch {
	case token(c.Name) == "":
		return tollgate.FieldErrorf("fleet", "must contain letters or digits, got %q", c.Name)
	case c.Replicas < 1 || c.Replicas > 5:
		return tollgate.FieldErrorf("fleet-replicas", "must be between 1 and 5, got %d", c.Replicas)
	case c.SnapshotEvery < time.Second:
		return tollgate.FieldErrorf("fleet-snapshot-interval", "must be at least 1s, got %s", c.SnapshotEvery)
	case c.History < 4*c.SnapshotEvery:
		// A new sidecar restores the latest snapshot and applies the stream after it: the
		// stream must still hold every message since that snapshot.
		return tollgate.FieldErrorf("fleet-history", "must be at least 4 x --fleet-snapshot-interval (%s), got %s", 4*c.SnapshotEvery, c.History)
	case c.DuplicateWindow > c.History:
		c.DuplicateWindow = c.History
	}
	for _, u := range c.servers() {
		if !strings.Contains(u, "://") && strings.ContainsAny(u, "/ ") {
			return tollgate.FieldErrorf("nats-url", "%q is not a NATS URL", u)
		}
	}
	if (c.Cert == "") != (c.Key == "") {
		return tollgate.FieldErrorf("nats-cert", "--nats-cert and --nats-key go together")
	}
	return nil
}

func (c *Config) servers() []string {
	var out []string
	for u := range strings.SplitSeq(c.URLs, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// token is name reduced to what stream and bucket names allow (letters, digits, '-', '_').
func token(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Names are the JetStream names of one fleet.
type Names struct {
	Stream    string // <FLEET>_LOG
	Subjects  string // <fleet>.log.>
	Prefix    string // <fleet>.log. ; a message kind follows
	Snapshots string // object store <FLEET>_SNAPSHOTS
	// KVPrefix starts the name of every KV bucket of the fleet (<FLEET>_), e.g. the usage
	// counters' <FLEET>_USAGE.
	KVPrefix string
}

// NamesOf derives the names from --fleet.
func NamesOf(fleet string) Names {
	t := token(fleet)
	up := strings.ToUpper(t)
	return Names{
		Stream: up + "_LOG", Subjects: t + ".log.>", Prefix: t + ".log.",
		Snapshots: up + "_SNAPSHOTS", KVPrefix: up + "_",
	}
}
