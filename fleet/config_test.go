package fleet

import (
	"errors"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

func TestConfigValidateNamesTheFlag(t *testing.T) {
	cases := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"no letters in the fleet name", Config{URLs: "nats://x:4222", Name: "..."}, "fleet"},
		{"too many replicas", Config{URLs: "nats://x:4222", Replicas: 7}, "fleet-replicas"},
		{"history shorter than four snapshots", Config{URLs: "nats://x:4222", History: time.Minute, SnapshotEvery: time.Minute}, "fleet-history"},
		{"snapshot interval too short", Config{URLs: "nats://x:4222", SnapshotEvery: time.Millisecond}, "fleet-snapshot-interval"},
		{"cert without key", Config{URLs: "nats://x:4222", Cert: "c.pem"}, "nats-cert"},
		{"not a URL", Config{URLs: "nats://a:4222, not a url"}, "nats-url"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			var fe *tollgate.Error
			if err == nil || !errors.As(err, &fe) || fe.Field != c.field {
				t.Fatalf("Validate() = %v, want a field error on %q", err, c.field)
			}
		})
	}
	ok := Config{URLs: "nats://a:4222,nats://b:4222"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if ok.Name != DefaultName || ok.Replicas != DefaultReplicas || ok.History != DefaultHistory {
		t.Fatalf("defaults not filled: %+v", ok)
	}
}

func TestNamesAreSanitisedAndPrefixed(t *testing.T) {
	n := NamesOf("shop.prod")
	want := Names{Stream: "SHOPPROD_LOG", Subjects: "shopprod.log.>", Prefix: "shopprod.log.",
		Snapshots: "SHOPPROD_SNAPSHOTS", KVPrefix: "SHOPPROD_"}
	if n != want {
		t.Fatalf("NamesOf = %+v, want %+v", n, want)
	}
}
