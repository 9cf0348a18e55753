package metrics_test

import (
	"testing"

	"mustserv/internal/metrics"
)

func TestRegisterProcessGo(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	metrics.RegisterProcess(r)
	e := scrape(t, r)
	for name, typ := range map[string]string{"go_goroutines": "gauge", "go_memstats_heap_inuse_bytes": "gauge"} {
		if e.typ[name] != typ {
			t.Errorf("%s: type %q, want %q", name, e.typ[name], typ)
		}
	}
	if v, _ := e.value("go_memstats_heap_inuse_bytes", nil); v <= 0 {
		t.Errorf("go_memstats_heap_inuse_bytes = %v, want > 0", v)
	}

	// Other tests run in parallel, so the count is only bounded below.
	const n = 50
	release := make(chan struct{})
	started := make(chan struct{})
	for range n {
		go func() {
			started <- struct{}{}
			<-release
		}()
	}
	for range n {
		<-started
	}
	got := mustValue(t, r, "go_goroutines")
	close(release)
	if got < n+1 {
		t.Errorf("go_goroutines = %v with %d goroutines parked, want at least %d", got, n, n+1)
	}
}

func TestRegisterProcessTwicePanics(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	metrics.RegisterProcess(r)
	defer func() {
		if recover() == nil {
			t.Error("second RegisterProcess on one registry did not panic")
		}
	}()
	metrics.RegisterProcess(r)
}
