package pace

import (
	"io"
	"strconv"
	"testing"
	"time"
)

// The benchmarks measure the ledger's cost per paced write, the part every
// stream pays on every slice: slices of the smallest size (minStep) at a
// rate so high that every stream is always due, so nothing waits and the
// time is plan, the write and account. bench/pace-cost.sh measures whole
// servers.

// benchOptions make every slice minStep bytes: a 1 ns step at 1 TB/s is
// 1 kB, raised to the floor.
var benchOptions = Options{Step: time.Nanosecond}

const benchRate = 1e12

// discardSink takes every byte at once.
type discardSink struct{}

func (discardSink) send(n int64) (int64, error)                       { return n, nil }
func (discardSink) await(n int64, stall time.Duration) (int64, error) { return n, nil }
func (discardSink) interrupt()                                        {}
func (discardSink) close()                                            {}

// BenchmarkLoop: one op is one slice sent by the loop, over streams
// handed streams at once.
func BenchmarkLoop(b *testing.B) {
	for _, streams := range []int{1, 100} {
		b.Run("streams="+strconv.Itoa(streams), func(b *testing.B) {
			p := New(benchOptions)
			defer p.Close()
			done := make(chan struct{}, streams)
			per := int64(b.N/streams+1) * minStep
			b.SetBytes(minStep)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range streams {
				s, err := p.Admit(b.Context(), Admission{Client: strconv.Itoa(i), Rate: benchRate, Factor: 1})
				if err != nil {
					b.Fatal(err)
				}
				if err := s.handTo(discardSink{}, per, func(int64, error) { done <- struct{}{} }); err != nil {
					b.Fatal(err)
				}
			}
			for range streams {
				<-done
			}
		})
	}
}

// BenchmarkCopy: one op is one slice paced by Copy in the caller's
// goroutine.
func BenchmarkCopy(b *testing.B) {
	p := New(benchOptions)
	defer p.Close()
	s, err := p.Admit(b.Context(), Admission{Client: "c", Rate: benchRate, Factor: 1})
	if err != nil {
		b.Fatal(err)
	}
	n := int64(b.N) * minStep
	b.SetBytes(minStep)
	b.ReportAllocs()
	b.ResetTimer()
	if m, err := s.Copy(b.Context(), io.Discard, io.LimitReader(zeros{}, n), n); err != nil || m != n {
		b.Fatalf("Copy = %d, %v", m, err)
	}
}

// BenchmarkAdmit: one op is a stream admitted and released, among 1,000
// active ones.
func BenchmarkAdmit(b *testing.B) {
	p := New(Options{Uplink: 1 << 40})
	defer p.Close()
	for i := range 1000 {
		if _, err := p.Admit(b.Context(), Admission{Client: strconv.Itoa(i), Rate: 1 << 20, Factor: 1.25}); err != nil {
			b.Fatal(err)
		}
	}
	a := Admission{Client: "c", Label: "Music/a.mp3", Rate: 1 << 20, Factor: 1.25, Burst: 8 << 20}
	b.ReportAllocs()
	for b.Loop() {
		s, err := p.Admit(b.Context(), a)
		if err != nil {
			b.Fatal(err)
		}
		s.Release()
	}
}

// BenchmarkStreams: one op is a snapshot of 10,000 streams, what the
// paced writes wait for while an admin page polls.
func BenchmarkStreams(b *testing.B) {
	p := New(Options{})
	defer p.Close()
	for i := range 10000 {
		if _, err := p.Admit(b.Context(), Admission{Client: strconv.Itoa(i), Label: "Music/a.mp3", Rate: 1 << 20, Factor: 1.25}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(p.Streams()) != 10000 {
			b.Fatal("streams missing")
		}
	}
}

// BenchmarkStop: one op is Stop of an ID that is not there, among 10,000
// streams: the longest search.
func BenchmarkStop(b *testing.B) {
	p := New(Options{})
	defer p.Close()
	for i := range 10000 {
		if _, err := p.Admit(b.Context(), Admission{Client: strconv.Itoa(i), Rate: 1 << 20, Factor: 1.25}); err != nil {
			b.Fatal(err)
		}
	}
	id := p.tag + "-0"
	for b.Loop() {
		if p.Stop(id) {
			b.Fatal("stopped a stream that is not there")
		}
	}
}
