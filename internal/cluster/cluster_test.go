package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestUplinkExhausted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		u    Uplink
		want bool
	}{
		{Uplink{}, false}, // unlimited
		{Uplink{Budget: 10_000_000}, false},
		{Uplink{Budget: 50_000}, true}, // not even one small stream fits
		{Uplink{Budget: 10_000_000, Reserved: 9_000_000, Active: 3}, true},    // 1 M free < the mean 3 M
		{Uplink{Budget: 10_000_000, Reserved: 6_000_000, Active: 3}, false},   // 4 M free ≥ the mean 2 M
		{Uplink{Budget: 10_000_000, Reserved: 9_000_000, Active: 1}, true},    // the next 9 M stream does not fit
		{Uplink{Budget: 10_000_000, Reserved: 9_950_000, Active: 199}, true},  // 50 k free < 64 k
		{Uplink{Budget: 10_000_000, Reserved: 9_900_000, Active: 198}, false}, // 100 k free ≥ 64 k ≥ mean 50 k
	} {
		if got := tc.u.Exhausted(); got != tc.want {
			t.Errorf("%+v: exhausted %v, want %v", tc.u, got, tc.want)
		}
	}
	if f := (Uplink{Budget: 5, Reserved: 9}).Free(); f != 0 {
		t.Errorf("overbooked free = %d, want 0", f)
	}
}

func TestStateReady(t *testing.T) {
	t.Parallel()
	var indexed atomic.Bool
	var calls atomic.Int32
	u := Uplink{Budget: 10_000_000}
	s := &State{
		Indexed: func() bool { calls.Add(1); return indexed.Load() },
		Uplink:  func() Uplink { return u },
	}
	check := func(want error) {
		t.Helper()
		if got := s.Ready(); !errors.Is(got, want) {
			t.Errorf("Ready() = %v, want %v", got, want)
		}
	}
	check(ErrStarting)
	if err := s.Serving(); !errors.Is(err, ErrStarting) {
		t.Errorf("Serving() before Start = %v", err)
	}
	s.Start()
	check(ErrIndexing)
	if err := s.Serving(); !errors.Is(err, ErrIndexing) {
		t.Errorf("Serving() before the index = %v", err)
	}
	indexed.Store(true)
	check(nil)
	indexed.Store(false) // once loaded, the index stays loaded
	n := calls.Load()
	check(nil)
	if calls.Load() != n {
		t.Error("Indexed asked again after it said yes")
	}
	s.SetDraining(true)
	check(ErrDraining)
	if err := s.Serving(); err != nil {
		t.Errorf("Serving() while draining = %v, want nil: pages go on", err)
	}
	if !s.Draining() {
		t.Error("Draining() false while draining")
	}
	s.SetDraining(false)
	check(nil)
	u = Uplink{Budget: 10_000_000, Reserved: 10_000_000, Active: 2}
	check(ErrUplinkFull)
	if err := s.Open(); err != nil {
		t.Errorf("Open() with the budget exhausted = %v, want nil (peers place by the stream's own rate)", err)
	}
	u = Uplink{Budget: 10_000_000}
	// A shutdown's drain cannot be undone by an admin.
	s.Stop()
	check(ErrStopping)
	s.SetDraining(false)
	check(ErrStopping)
	if !s.Draining() || s.Open() == nil {
		t.Error("a stopping node is not draining or still open")
	}
}

func metricsText(u Uplink, ready bool) string {
	r := 0
	if ready {
		r = 1
	}
	return fmt.Sprintf("# HELP mustserv_open 1 when the node takes streams.\n# TYPE mustserv_open gauge\n"+
		"mustserv_open %d\ngo_goroutines 12\n%s %d\n%s %d\n%s %d\nmustserv_other{x=\"y\"} 3\n",
		r, MetricBudget, u.Budget, MetricReserved, u.Reserved, MetricActive, u.Active)
}

func TestParseMetrics(t *testing.T) {
	t.Parallel()
	want := Uplink{Budget: 50_000_000, Reserved: 1_234_567, Active: 4}
	u, ready, err := ParseMetrics(strings.NewReader(metricsText(want, true)))
	if err != nil || u != want || !ready {
		t.Fatalf("ParseMetrics = %+v, %v, %v; want %+v, true", u, ready, err, want)
	}
	if _, _, err := ParseMetrics(strings.NewReader("go_goroutines 3\n")); err == nil || !strings.Contains(err.Error(), "not a MuStServ") {
		t.Errorf("metrics of something else: %v", err)
	}
	bad := strings.Replace(metricsText(want, false), MetricActive+" 4", MetricActive+" many", 1)
	if _, _, err := ParseMetrics(strings.NewReader(bad)); err == nil {
		t.Error("a bad value was accepted")
	}
	for _, v := range []string{"-5", "NaN", "+Inf", "1e300"} {
		if _, _, err := ParseMetrics(strings.NewReader(metricsText(Uplink{Budget: 1}, false) + MetricBudget + " " + v + "\n")); err == nil {
			t.Errorf("a budget of %s was accepted", v)
		}
	}
}

func FuzzParseMetrics(f *testing.F) {
	f.Add(metricsText(Uplink{Budget: 5, Reserved: 3, Active: 1}, true))
	f.Add("mustserv_open NaN\n")
	f.Add(metricsText(Uplink{}, true) + MetricBudget + " +Inf\n")
	f.Fuzz(func(t *testing.T, s string) {
		u, _, err := ParseMetrics(strings.NewReader(s))
		if err == nil && (u.Budget < 0 || u.Reserved < 0 || u.Active < 0 || u.Budget > maxMetric) {
			t.Errorf("negative uplink %+v from %q", u, s)
		}
	})
}

// peer serves /metrics like a node: uplink u, and 401 without the token.
func peer(t *testing.T, token string, u *atomic.Pointer[Uplink], ready *atomic.Bool) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, metricsText(*u.Load(), ready.Load()))
	}))
	t.Cleanup(s.Close)
	return s
}

func TestPollAndPick(t *testing.T) {
	t.Parallel()
	var ua, ub atomic.Pointer[Uplink]
	var ra, rb atomic.Bool
	ua.Store(&Uplink{Budget: 10_000_000, Reserved: 8_000_000, Active: 4}) // 2 M free
	ub.Store(&Uplink{Budget: 10_000_000, Reserved: 5_000_000, Active: 2}) // 5 M free
	ra.Store(true)
	rb.Store(true)
	a, b := peer(t, "tok", &ua, &ra), peer(t, "tok", &ub, &rb)
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	c := New(Options{Peers: []string{a.URL + "/", b.URL, dead.URL}, Poll: time.Second,
		Token: func(time.Time) (string, error) { return "tok", nil }})
	now := time.Now()
	if _, ok := c.Pick(1, now, nil); ok {
		t.Error("picked a peer before any was read")
	}
	c.Poll(t.Context())
	ps := c.Peers()
	if ps[0].URL != a.URL || ps[0].Uplink != *ua.Load() || !ps[0].Ready || ps[0].Err != "" {
		t.Errorf("peer a read as %+v", ps[0])
	}
	if ps[2].Err == "" || ps[2].Ready {
		t.Errorf("a dead peer read as %+v", ps[2])
	}
	// 2 M streams: b (5 M free) takes two, then a and b have 2 M and 1 M... each
	// pick goes to the most free room and counts there until the next read.
	var got []string
	for range 5 {
		u, ok := c.Pick(2_000_000, time.Now(), nil)
		if !ok {
			u = "none"
		}
		got = append(got, map[string]string{a.URL: "a", b.URL: "b", "none": "-"}[u])
	}
	if s := strings.Join(got, ""); s != "bba--" {
		t.Errorf("picks %q, want b and a by free room, then none", s)
	}
	if c.Redirected() != 3 {
		t.Errorf("Redirected() = %d, want 3", c.Redirected())
	}
	// What was lent still counts after a read (the players may not have
	// arrived yet), and is forgotten two seconds later; a peer that is
	// not open is skipped.
	rb.Store(false)
	c.Poll(t.Context())
	if u, ok := c.Pick(2_000_000, time.Now(), nil); ok {
		t.Errorf("picked %q right after a read, with what was lent still counted", u)
	}
	if u, ok := c.Pick(2_000_000, time.Now().Add(2500*time.Millisecond), nil); !ok || u != a.URL {
		t.Errorf("with b not open and the loans over, picked %q, %v; want a", u, ok)
	}
	// A read clears the loans made well before it: those players are in
	// what it says.
	c2 := New(Options{Peers: []string{a.URL}, Poll: time.Second, Token: func(time.Time) (string, error) { return "tok", nil }})
	c2.Poll(t.Context())
	if u, ok := c2.Pick(1_000_000, time.Now().Add(-time.Second), nil); !ok || u != a.URL {
		t.Fatalf("a loan a second old: picked %q, %v", u, ok)
	}
	c2.Poll(t.Context())
	if ps := c2.Peers(); ps[0].Uplink.Reserved != ua.Load().Reserved {
		t.Errorf("after a read, a's reserved %d counts a loan made before it (read %d)", ps[0].Uplink.Reserved, ua.Load().Reserved)
	}
	// A peer accept refuses (another scheme, say) is not picked, nor
	// counted.
	before := c.Redirected()
	if u, ok := c.Pick(1, time.Now().Add(2500*time.Millisecond), func(u string) bool { return u != a.URL }); ok {
		t.Errorf("picked %q, which accept refused", u)
	}
	if c.Redirected() != before {
		t.Error("a refused pick was counted")
	}
	// Stale reads are not trusted.
	if _, ok := c.Pick(1, time.Now().Add(10*time.Second), nil); ok {
		t.Error("picked a peer read 10 polls ago")
	}
}

func TestPickUnlimitedSpreads(t *testing.T) {
	t.Parallel()
	var ua, ub atomic.Pointer[Uplink]
	var r atomic.Bool
	r.Store(true)
	ua.Store(&Uplink{Active: 3})
	ub.Store(&Uplink{Active: 1})
	a, b := peer(t, "", &ua, &r), peer(t, "", &ub, &r)
	c := New(Options{Peers: []string{a.URL, b.URL}, Poll: time.Second})
	c.Poll(t.Context())
	n := map[string]int{}
	for range 6 {
		u, ok := c.Pick(5_000_000, time.Now(), nil)
		if !ok {
			t.Fatal("no pick among unlimited peers")
		}
		n[u]++
	}
	// b (1 running) gets picks until it has a's 3, then they alternate.
	if n[a.URL] != 2 || n[b.URL] != 4 {
		t.Errorf("picks a=%d b=%d, want 2 and 4", n[a.URL], n[b.URL])
	}
}

func TestRunStops(t *testing.T) {
	t.Parallel()
	var u atomic.Pointer[Uplink]
	var r atomic.Bool
	u.Store(&Uplink{})
	p := peer(t, "", &u, &r)
	c := New(Options{Peers: []string{p.URL}, Poll: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for c.Peers()[0].Seen.IsZero() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling, bounded by the deadline
	}
	if c.Peers()[0].Seen.IsZero() {
		t.Fatal("Run did not read the peer")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// TestPickSpreadsASurge: nodes that each place a stream at the same moment,
// knowing nothing of each other's picks, do not all pick the same one of
// several equally roomy peers.
func TestPickSpreadsASurge(t *testing.T) {
	t.Parallel()
	var r atomic.Bool
	r.Store(true)
	var urls []string
	for range 4 {
		var u atomic.Pointer[Uplink]
		u.Store(&Uplink{Budget: 100_000_000})
		urls = append(urls, peer(t, "", &u, &r).URL)
	}
	picked := map[string]int{}
	for range 40 { // 40 nodes, one stream each
		c := New(Options{Peers: urls, Poll: time.Second})
		c.Poll(t.Context())
		u, ok := c.Pick(1_000_000, time.Now(), nil)
		if !ok {
			t.Fatal("no pick among roomy peers")
		}
		picked[u]++
	}
	if len(picked) < 3 {
		t.Errorf("40 nodes' picks landed on %d of 4 equal peers: %v", len(picked), picked)
	}
}
