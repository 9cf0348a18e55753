package metrics

import (
	"math"
	"runtime"
	rtmetrics "runtime/metrics"
)

// RegisterProcess registers metrics about the running process under the
// names Prometheus's own client uses, so existing dashboards work:
// process_* from /proc/self on Linux (none elsewhere), and go_goroutines
// and go_memstats_heap_inuse_bytes everywhere. A process_* metric whose
// source cannot be read at registration is left out rather than written
// as a made-up value. It panics if any of the names is already registered.
func RegisterProcess(r *Registry) {
	registerOS(r)
	r.GaugeFunc("go_goroutines", "Number of goroutines that currently exist.", func() float64 {
		return float64(runtime.NumGoroutine())
	})
	registerHeapInuse(r)
}

// Heap in use is what runtime.MemStats calls HeapInuse. runtime/metrics
// splits it in two (the runtime's own metrics_test checks unused against
// HeapInuse-HeapAlloc and objects against HeapAlloc), and reading them
// does not stop the world, which runtime.ReadMemStats does.
const (
	heapObjects = "/memory/classes/heap/objects:bytes"
	heapUnused  = "/memory/classes/heap/unused:bytes"
)

func registerHeapInuse(r *Registry) {
	have := 0
	for _, d := range rtmetrics.All() {
		if d.Name == heapObjects || d.Name == heapUnused {
			have++
		}
	}
	if have != 2 {
		return
	}
	r.GaugeFunc("go_memstats_heap_inuse_bytes", "Bytes in heap spans holding at least one object (runtime.MemStats.HeapInuse).", func() float64 {
		s := []rtmetrics.Sample{{Name: heapObjects}, {Name: heapUnused}}
		rtmetrics.Read(s)
		if s[0].Value.Kind() != rtmetrics.KindUint64 || s[1].Value.Kind() != rtmetrics.KindUint64 {
			return math.NaN()
		}
		return float64(s[0].Value.Uint64() + s[1].Value.Uint64())
	})
}
