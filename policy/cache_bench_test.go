package policy

import (
	"fmt"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

// benchKeys builds n distinct keys as the api decoder would: owned strings, one vendor each
// among 256, the revision telling keys of one vendor apart.
func benchKeys(n int) []cacheKey {
	vendors := make([]string, 256)
	for i := range vendors {
		vendors[i] = fmt.Sprint(1000 + i)
	}
	keys := make([]cacheKey, n)
	for i := range keys {
		keys[i] = cacheKey{gen: 1, revision: uint64(1 + i/len(vendors)), vendor: vendors[i%len(vendors)],
			period: "2026-03", action: tollgate.ActionOrderCreate, flags: knownVendor}
	}
	return keys
}

func benchDecision() tollgate.Decision {
	return tollgate.Decision{Allow: false, Code: "limit_reached", Reason: "Monthly order limit reached (100/100)",
		Limit: i64(100), Used: 100, Remaining: i64(0), Tier: "essential", Status: "active",
		UpgradeTo: strp("professional")}
}

// BenchmarkDecisionCache times the cache alone at its default size: a hit, a miss, and a put
// of a new key while the clock advances, so that entries expire (10,000 puts a second against
// a 1 s TTL: the churn of a serving sidecar, where usage bumps revisions and keys are new).
func BenchmarkDecisionCache(b *testing.B) {
	d := benchDecision()
	b.Run("get-hit", func(b *testing.B) {
		c := newDecisionCache(time.Hour, DefaultCacheSize)
		keys := benchKeys(1024)
		for i := range keys {
			c.put(&keys[i], d, testNow, nil)
		}
		now := testNow.Add(time.Second)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, ok := c.get(&keys[i&1023], now); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
	b.Run("get-miss", func(b *testing.B) {
		c := newDecisionCache(time.Hour, DefaultCacheSize)
		keys := benchKeys(2048)
		for i := range keys[:1024] {
			c.put(&keys[i], d, testNow, nil)
		}
		missing := keys[1024:]
		now := testNow.Add(time.Second)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, ok := c.get(&missing[i&1023], now); ok {
				b.Fatal("hit")
			}
			i++
		}
	})
	b.Run("put", func(b *testing.B) {
		c := newDecisionCache(time.Second, DefaultCacheSize)
		k := benchKeys(256)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			key := &k[i&255]
			key.revision = uint64(1 + i)
			c.put(key, d, testNow.Add(time.Duration(i)*100*time.Microsecond), nil)
			i++
		}
	})
	// get, and put on a miss, from every P at once: 4,096 keys, each revision superseded
	// after a few uses, the clock advancing.
	b.Run("get-put-parallel", func(b *testing.B) {
		c := newDecisionCache(time.Second, DefaultCacheSize)
		base := benchKeys(4096)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			keys := append([]cacheKey(nil), base...)
			i := 0
			for pb.Next() {
				k := &keys[i&4095]
				if i&16383 == 0 {
					for j := range keys {
						keys[j].revision++
					}
				}
				now := testNow.Add(time.Duration(i) * time.Microsecond)
				if _, ok := c.get(k, now); !ok {
					c.put(k, d, now, nil)
				}
				i++
			}
		})
	})
}
