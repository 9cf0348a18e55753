package metrics_test

import (
	"io"
	"strconv"
	"testing"

	"mustserv/internal/metrics"
)

func BenchmarkCounterAdd(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		c := metrics.New().Counter("c_total", "")
		for b.Loop() {
			c.Add(1)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		c := metrics.New().Counter("c_total", "")
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c.Add(1)
			}
		})
	})
	b.Run("vec", func(b *testing.B) {
		v := metrics.New().CounterVec("c_total", "", "k")
		for b.Loop() {
			v.With("GET").Add(1)
		}
	})
}

// BenchmarkWriteTo writes 50 families: 20 counters, 15 gauges, 5 counter
// families of 10 values, 5 gauge families of 10 values and 5 gauge funcs.
func BenchmarkWriteTo(b *testing.B) {
	r := metrics.New()
	for i := range 20 {
		r.Counter("counter_"+strconv.Itoa(i)+"_total", "A counter for the benchmark.").Add(int64(i) * 1000)
	}
	for i := range 15 {
		r.Gauge("gauge_"+strconv.Itoa(i), "A gauge for the benchmark.").Set(int64(-i))
	}
	for i := range 5 {
		cv := r.CounterVec("counter_vec_"+strconv.Itoa(i)+"_total", "A labelled counter.", "code")
		gv := r.GaugeVec("gauge_vec_"+strconv.Itoa(i), "A labelled gauge.", "client")
		for j := range 10 {
			cv.With(strconv.Itoa(200 + j)).Add(int64(j))
			gv.With("10.0.0." + strconv.Itoa(j)).Set(int64(j))
		}
		r.GaugeFunc("func_"+strconv.Itoa(i), "A gauge func.", func() float64 { return 0.5 })
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
