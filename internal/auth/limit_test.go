package auth

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

func TestLimiter(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(5, 12*time.Second, 0)
		for i := range 5 {
			if ok, _ := l.Allow("10.0.0.1"); !ok {
				t.Fatalf("attempt %d of the burst refused", i+1)
			}
		}
		ok, retry := l.Allow("10.0.0.1")
		if ok || retry != 12*time.Second {
			t.Fatalf("6th attempt: %v, retry after %v; want refused, 12s", ok, retry)
		}
		// Another key is not affected.
		if ok, _ := l.Allow("10.0.0.2"); !ok {
			t.Error("another key refused")
		}
		// One attempt comes back per 12 s, not more.
		time.Sleep(12 * time.Second)
		if ok, _ := l.Allow("10.0.0.1"); !ok {
			t.Error("refused after 12 s")
		}
		if ok, _ := l.Allow("10.0.0.1"); ok {
			t.Error("two attempts allowed after 12 s")
		}
		// A minute of quiet gives the whole burst back.
		time.Sleep(time.Minute)
		for i := range 5 {
			if ok, _ := l.Allow("10.0.0.1"); !ok {
				t.Fatalf("after a quiet minute, attempt %d refused", i+1)
			}
		}
	})
}

// TestLimiterBounded: a spray of keys (an attacker with many addresses)
// keeps the map bounded, and limited keys stay limited while the least
// limited are dropped first.
func TestLimiterBounded(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(2, time.Minute, 1000)
		for range 2 {
			l.Allow("victim")
		}
		time.Sleep(time.Second)
		for i := range 10_000 {
			l.Allow(fmt.Sprint("spray", i))
		}
		if n := len(l.tat); n > 1000 {
			t.Errorf("%d keys held, want at most 1000", n)
		}
		if ok, _ := l.Allow("victim"); ok {
			t.Error("the most limited key was forgotten by the spray")
		}
	})
}
