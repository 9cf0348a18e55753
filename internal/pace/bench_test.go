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
