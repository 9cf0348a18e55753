package metrics_test

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"mustserv/internal/metrics"
)

func TestRegisterProcessLinux(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	metrics.RegisterProcess(r)
	e := scrape(t, r)
	want := map[string]string{
		"process_resident_memory_bytes": "gauge",
		"process_virtual_memory_bytes":  "gauge",
		"process_cpu_seconds_total":     "counter",
		"process_open_fds":              "gauge",
		"process_max_fds":               "gauge",
		"process_start_time_seconds":    "gauge",
	}
	v := map[string]float64{}
	for name, typ := range want {
		if e.typ[name] != typ {
			t.Errorf("%s: type %q, want %q", name, e.typ[name], typ)
		}
		v[name], _ = e.value(name, nil)
	}
	if v["process_resident_memory_bytes"] <= 0 {
		t.Errorf("process_resident_memory_bytes = %v, want > 0", v["process_resident_memory_bytes"])
	}
	if v["process_virtual_memory_bytes"] < v["process_resident_memory_bytes"] {
		t.Errorf("process_virtual_memory_bytes = %v, below resident %v", v["process_virtual_memory_bytes"], v["process_resident_memory_bytes"])
	}
	if v["process_open_fds"] < 3 {
		t.Errorf("process_open_fds = %v, want at least stdin, stdout, stderr", v["process_open_fds"])
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	if v["process_max_fds"] != float64(rl.Cur) {
		t.Errorf("process_max_fds = %v, want RLIMIT_NOFILE soft limit %d", v["process_max_fds"], rl.Cur)
	}
	// btime has whole seconds, so the start time may be up to a second
	// after the true one; the test binary started well within a day.
	start := time.Unix(int64(v["process_start_time_seconds"]), 0)
	if now := time.Now(); start.After(now.Add(2*time.Second)) || start.Before(now.Add(-24*time.Hour)) {
		t.Errorf("process_start_time_seconds = %v (%v), not shortly before now (%v)", v["process_start_time_seconds"], start, now)
	}
}

// TestProcessOpenFDs is not parallel: other tests open files and sockets,
// and Go runs serial tests before resuming any parallel one.
func TestProcessOpenFDs(t *testing.T) {
	r := metrics.New()
	metrics.RegisterProcess(r)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// The first open may set up the runtime's poller, which holds
	// descriptors of its own; take the baseline after it.
	warm, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	warm.Close()

	before := mustValue(t, r, "process_open_fds")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	during := mustValue(t, r, "process_open_fds")
	f.Close()
	after := mustValue(t, r, "process_open_fds")
	if during != before+1 || after != before {
		t.Errorf("process_open_fds: %v before opening a file, %v while open, %v after closing; want n, n+1, n", before, during, after)
	}
}

func TestProcessCPUSeconds(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	metrics.RegisterProcess(r)
	first := mustValue(t, r, "process_cpu_seconds_total")
	prev := first
	buf := make([]byte, 1<<20)
	// Burn CPU in small steps until the clock-tick counter moves: 1000
	// steps are seconds of CPU, far more than the 10ms one tick needs.
	for range 1000 {
		for range 4 {
			sum := sha256.Sum256(buf)
			buf[0] = sum[0]
		}
		v := mustValue(t, r, "process_cpu_seconds_total")
		if v < prev {
			t.Fatalf("process_cpu_seconds_total went from %v to %v", prev, v)
		}
		prev = v
		if v > first {
			return
		}
	}
	t.Errorf("process_cpu_seconds_total stayed at %v while burning CPU", first)
}
