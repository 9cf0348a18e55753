package pace

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeSink stands in for a socket: it takes every byte at once unless
// blocked, and records how many bytes it took by when.
type fakeSink struct {
	start time.Time

	mu      sync.Mutex
	at      []time.Duration // since start
	n       []int64
	total   int64
	blocked bool
	intr    chan struct{}
	closed  bool
}

func newFakeSink() *fakeSink {
	return &fakeSink{start: time.Now(), intr: make(chan struct{})}
}

func (f *fakeSink) record(n int64) {
	f.at = append(f.at, time.Since(f.start))
	f.n = append(f.n, n)
	f.total += n
}

func (f *fakeSink) send(n int64) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.blocked {
		return 0, errAgain
	}
	f.record(n)
	return n, nil
}

func (f *fakeSink) await(n int64, stall time.Duration) (int64, error) {
	t := time.NewTimer(stall)
	defer t.Stop()
	select {
	case <-t.C:
		return 0, os.ErrDeadlineExceeded
	case <-f.intr:
		return 0, errInterrupted
	}
}

func (f *fakeSink) interrupt() {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.intr:
	default:
		close(f.intr)
	}
}

func (f *fakeSink) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
}

// sentBetween is the number of bytes taken in [from, to).
func (f *fakeSink) sentBetween(from, to time.Duration) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var s int64
	for i, at := range f.at {
		if at >= from && at < to {
			s += f.n[i]
		}
	}
	return s
}

func (f *fakeSink) sum() (int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.total, f.closed
}

// within fails unless got is within tol (a fraction) of want.
func within(t *testing.T, what string, got, want float64, tol float64) {
	t.Helper()
	if got < want*(1-tol) || got > want*(1+tol) {
		t.Errorf("%s = %.0f, want %.0f ±%.1f%%", what, got, want, tol*100)
	}
}

const (
	kB = 1000
	// rate is the media's need in the tests: 5 Mbit/s.
	rate = 625 * kB
)

// TestBurstThenPace: the burst goes at once, then the stream keeps to
// rate × factor, to within one step over 30 s.
func TestBurstThenPace(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := New(Options{})
		defer p.Close()
		s, err := p.Admit(t.Context(), Admission{Client: "a", Rate: rate, Factor: 1.25, Burst: 8 * rate})
		if err != nil {
			t.Fatal(err)
		}
		out := newFakeSink()
		size := int64(60 * rate)
		var doneSent int64 = -1
		var doneErr error
		if err := s.handTo(out, size, func(n int64, err error) { doneSent, doneErr = n, err }); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if got := out.sentBetween(0, time.Millisecond); got < 8*rate {
			t.Errorf("burst: %d bytes at once, want at least %d", got, 8*rate)
		}
		time.Sleep(40 * time.Second)
		synctest.Wait()
		within(t, "bytes in 30 s after the burst", float64(out.sentBetween(5*time.Second, 35*time.Second)), 30*rate*1.25, 0.03)
		if st := p.Stats(); st.BurstSent != 8*rate || st.Handed != 1 || st.Active != 1 {
			t.Errorf("stats %+v, want burst %d and one stream", st, 8*rate)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if got, closed := out.sum(); got != size || !closed {
			t.Errorf("sent %d closed %v, want %d and closed", got, closed, size)
		}
		if st := p.Stats(); st.Active != 0 || st.Handed != 0 || st.Sent != size {
			t.Errorf("after the end: %+v", st)
		}
		if doneSent != size || doneErr != nil {
			t.Errorf("done(%d, %v), want done(%d, nil)", doneSent, doneErr, size)
		}
	})
}

// countWriter counts what it is given, by time.
type countWriter struct {
	start time.Time
	at    []time.Duration
	n     []int64
}

func (w *countWriter) Write(p []byte) (int, error) {
	w.at = append(w.at, time.Since(w.start))
	w.n = append(w.n, int64(len(p)))
	return len(p), nil
}

func (w *countWriter) between(from, to time.Duration) (s int64) {
	for i, at := range w.at {
		if at >= from && at < to {
			s += w.n[i]
		}
	}
	return s
}

// TestCopyPaces: Copy keeps the same pace in the caller's goroutine.
func TestCopyPaces(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := New(Options{})
		defer p.Close()
		s, err := p.Admit(t.Context(), Admission{Client: "a", Rate: rate, Factor: 1.25, Burst: 8 * rate})
		if err != nil {
			t.Fatal(err)
		}
		w := &countWriter{start: time.Now()}
		size := int64(50 * rate)
		n, err := s.Copy(t.Context(), w, io.LimitReader(zeros{}, size), size)
		if err != nil || n != size {
			t.Fatalf("Copy = %d, %v", n, err)
		}
		if got := w.between(0, time.Millisecond); got < 8*rate {
			t.Errorf("burst: %d bytes at once, want %d", got, 8*rate)
		}
		within(t, "bytes in 30 s after the burst", float64(w.between(2*time.Second, 32*time.Second)), 30*rate*1.25, 0.03)
		if st := p.Stats(); st.Active != 0 {
			t.Errorf("Copy did not release: %+v", st)
		}
	})
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestPerClientAcrossConnections: three connections of one client share
// its limit; another client is not slowed by it.
func TestPerClientAcrossConnections(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const limit = 1000 * kB
		p := New(Options{PerClient: limit})
		defer p.Close()
		var outs []*fakeSink
		for i, who := range []string{"greedy", "greedy", "greedy", "other"} {
			s, err := p.Admit(t.Context(), Admission{Client: who, Rate: rate, Factor: 1.25, Burst: 8 * rate})
			if err != nil {
				t.Fatal(i, err)
			}
			out := newFakeSink()
			if err := s.handTo(out, 200*rate, nil); err != nil {
				t.Fatal(err)
			}
			outs = append(outs, out)
		}
		time.Sleep(45 * time.Second)
		synctest.Wait()
		var greedy int64
		for _, o := range outs[:3] {
			greedy += o.sentBetween(10*time.Second, 40*time.Second)
		}
		within(t, "greedy client's three connections over 30 s", float64(greedy), 30*limit, 0.03)
		// The other client is below the limit: it gets its own pace.
		within(t, "other client over 30 s", float64(outs[3].sentBetween(10*time.Second, 40*time.Second)), 30*rate*1.25, 0.03)
	})
}

// TestSeekGetsBurst: a new request of a client that is streaming (a
// seek) gets its burst at once, while the client's total stays bounded.
func TestSeekGetsBurst(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := New(Options{PerClient: 2 * rate})
		defer p.Close()
		first, _ := p.Admit(t.Context(), Admission{Client: "mpv", Rate: rate, Factor: 1.25, Burst: 4 * rate})
		out1 := newFakeSink()
		first.handTo(out1, 1000*rate, nil)
		time.Sleep(20 * time.Second)
		synctest.Wait()
		// The seek: a new connection, the old one still open for a while
		// (players close it after the new one answers).
		seek, _ := p.Admit(t.Context(), Admission{Client: "mpv", Rate: rate, Factor: 1.25, Burst: 4 * rate})
		out2 := newFakeSink()
		seek.handTo(out2, 1000*rate, nil)
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if got := out2.sentBetween(0, 3*time.Second); got < 4*rate {
			t.Errorf("seek: %d bytes in its first 3 s, want its burst of %d", got, 4*rate)
		}
		time.Sleep(60 * time.Second)
		synctest.Wait()
		both := out1.sentBetween(40*time.Second, 80*time.Second) + out2.sentBetween(20*time.Second, 60*time.Second)
		within(t, "client total over 40 s", float64(both), 40*2*rate, 0.03)
	})
}

// TestAdmission: the budget admits what fits, refuses the rest with a
// Retry-After, and admits again when a stream ends.
func TestAdmission(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := New(Options{Uplink: 2*rate + rate/2})
		defer p.Close()
		a, err := p.Admit(t.Context(), Admission{Client: "1", Rate: rate, Factor: 1.25})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Admit(t.Context(), Admission{Client: "2", Rate: rate, Factor: 1.25}); err != nil {
			t.Fatal(err)
		}
		_, err = p.Admit(t.Context(), Admission{Client: "3", Rate: rate, Factor: 1.25})
		var full *FullError
		if !errors.As(err, &full) || full.RetryAfter <= 0 || full.Free != rate/2 || full.Need != rate {
			t.Fatalf("third stream: %v, want a FullError with 2.5 Mbit/s free", err)
		}
		a.Release()
		if _, err := p.Admit(t.Context(), Admission{Client: "3", Rate: rate, Factor: 1.25}); err != nil {
			t.Errorf("after a release: %v", err)
		}
		if st := p.Stats(); st.Rejected != 1 || st.Admitted != 3 || st.Reserved != 2*rate {
			t.Errorf("stats %+v", st)
		}
	})
}

// TestQueue: with Queue, a stream that does not fit waits for the next
// release, in order, and gives up after QueueWait.
func TestQueue(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := New(Options{Uplink: rate, Queue: true, QueueWait: 10 * time.Second})
		defer p.Close()
		a, _ := p.Admit(t.Context(), Admission{Client: "1", Rate: rate})
		got := make(chan error, 2)
		for _, who := range []string{"2", "3"} {
			go func() {
				s, err := p.Admit(t.Context(), Admission{Client: who, Rate: rate})
				if err == nil {
					defer s.Release()
					time.Sleep(20 * time.Second) // longer than the queue wait
				}
				got <- err
			}()
			synctest.Wait()
		}
		time.Sleep(5 * time.Second)
		a.Release()
		// "2" is admitted; "3" waits its 10 s and is refused.
		var full *FullError
		if err := <-got; !errors.As(err, &full) {
			t.Errorf("third stream: %v, want FullError after the queue wait", err)
		}
		if err := <-got; err != nil {
			t.Errorf("second stream: %v", err)
		}
		if st := p.Stats(); st.Queued != 2 || st.Rejected != 1 {
			t.Errorf("stats %+v", st)
		}
	})
}

// TestLending: with a budget, headroom and bursts come from what is free
// and shrink to the reservation when the budget is full.
func TestLending(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := New(Options{Uplink: 3 * rate})
		defer p.Close()
		start := func(who string) *fakeSink {
			s, err := p.Admit(t.Context(), Admission{Client: who, Rate: rate, Factor: 1.25, Burst: 2 * rate})
			if err != nil {
				t.Fatal(err)
			}
			out := newFakeSink()
			s.handTo(out, 1000*rate, nil)
			return out
		}
		one := start("1")
		time.Sleep(time.Second)
		synctest.Wait()
		// Alone, it bursts at its rate plus all that is free: 3 × rate.
		within(t, "lone burst, first 0.6 s", float64(one.sentBetween(0, 600*time.Millisecond)), 0.6*3*rate, 0.25)
		time.Sleep(11 * time.Second)
		synctest.Wait()
		within(t, "lone stream after its burst, 10 s", float64(one.sentBetween(time.Second+500*time.Millisecond, 11*time.Second+500*time.Millisecond)), 10*rate*1.25, 0.03)
		two, three := start("2"), start("3")
		time.Sleep(30 * time.Second)
		synctest.Wait()
		// Full: every stream at exactly its reservation.
		for i, o := range []*fakeSink{one, two, three} {
			from := 20 * time.Second
			if i > 0 {
				from = 9 * time.Second
			}
			within(t, "stream in a full budget, 10 s", float64(o.sentBetween(from, from+10*time.Second)), 10*rate, 0.03)
		}
	})
}

// TestStalledClientIsCut: a client that takes nothing for Stall is cut,
// counted as a stall, and its reservation returns.
func TestStalledClientIsCut(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := New(Options{Stall: 30 * time.Second, Uplink: 10 * rate})
		defer p.Close()
		s, _ := p.Admit(t.Context(), Admission{Client: "1", Rate: rate, Factor: 1.25, Burst: 2 * rate})
		out := newFakeSink()
		out.blocked = true
		s.handTo(out, 100*rate, nil)
		time.Sleep(29 * time.Second)
		synctest.Wait()
		if st := p.Stats(); st.Handed != 1 || st.Cut != 0 {
			t.Fatalf("before the stall deadline: %+v", st)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if _, closed := out.sum(); !closed {
			t.Error("stalled stream not closed")
		}
		if st := p.Stats(); st.Handed != 0 || st.Active != 0 || st.Cut != 1 || st.Stalls != 1 || st.Reserved != 0 {
			t.Errorf("after the stall deadline: %+v", st)
		}
	})
}

// TestShutdown: Shutdown lets streams finish within its context, then
// cuts the rest, including one blocked on its socket.
func TestShutdown(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := New(Options{})
		short, _ := p.Admit(t.Context(), Admission{Client: "1", Rate: rate, Factor: 1})
		long, _ := p.Admit(t.Context(), Admission{Client: "2", Rate: rate, Factor: 1})
		stuck, _ := p.Admit(t.Context(), Admission{Client: "3", Rate: rate, Factor: 1})
		o1, o2, o3 := newFakeSink(), newFakeSink(), newFakeSink()
		o3.blocked = true
		var cutErrs []error
		cut := func(n int64, err error) { cutErrs = append(cutErrs, err) }
		short.handTo(o1, 5*rate, nil)
		long.handTo(o2, 100*rate, cut)
		stuck.handTo(o3, 100*rate, cut)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v, want the deadline", err)
		}
		if n, closed := o1.sum(); n != 5*rate || !closed {
			t.Errorf("short stream: %d bytes, closed %v", n, closed)
		}
		for _, o := range []*fakeSink{o2, o3} {
			if _, closed := o.sum(); !closed {
				t.Error("a stream outlived Shutdown")
			}
		}
		if st := p.Stats(); st.Handed != 0 || st.Active != 0 || st.Cut != 2 {
			t.Errorf("after Shutdown: %+v", st)
		}
		if len(cutErrs) != 2 || cutErrs[0] == nil || cutErrs[1] == nil {
			t.Errorf("cut streams told %v, want two errors", cutErrs)
		}
		if _, err := p.Admit(t.Context(), Admission{Client: "4", Rate: rate}); !errors.Is(err, ErrClosed) {
			t.Errorf("Admit after Shutdown = %v", err)
		}
	})
}

// TestCatchUp: a stream whose client took nothing for a while catches up
// by its buffer's worth at once; under an uplink budget by one step only.
func TestCatchUp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		uplink int64
		max    int64 // bytes in the second after the client reads again
	}{
		{"no budget", 0, 8*rate + 2*rate},
		{"budget", 4 * rate, 2 * rate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := New(Options{Uplink: tc.uplink, Stall: time.Minute})
				defer p.Close()
				s, _ := p.Admit(t.Context(), Admission{Client: "1", Rate: rate, Factor: 1, Burst: 8 * rate})
				out := &gateSink{fakeSink: newFakeSink(), open: make(chan struct{})}
				s.handTo(out, 1000*rate, nil)
				time.Sleep(20 * time.Second) // the burst went, then 12 s blocked
				synctest.Wait()
				before := out.sentBetween(0, 20*time.Second)
				close(out.open)
				time.Sleep(time.Second)
				synctest.Wait()
				after := out.sentBetween(20*time.Second, 21*time.Second)
				if after > tc.max || after < rate/2 {
					t.Errorf("%d bytes in the second after reading again (%d before), want at most %d", after, before, tc.max)
				}
			})
		})
	}
}

// gateSink takes bytes until 8 s after it starts, then nothing until open
// is closed.
type gateSink struct {
	*fakeSink
	open chan struct{}
}

func (g *gateSink) blockedNow() bool {
	select {
	case <-g.open:
		return false
	default:
		return time.Since(g.start) >= 8*time.Second
	}
}

func (g *gateSink) send(n int64) (int64, error) {
	if g.blockedNow() {
		return 0, errAgain
	}
	return g.fakeSink.send(n)
}

func (g *gateSink) await(n int64, stall time.Duration) (int64, error) {
	select {
	case <-g.open:
		return g.fakeSink.send(n)
	case <-time.After(stall):
		return 0, os.ErrDeadlineExceeded
	}
}
