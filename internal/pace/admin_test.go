package pace

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestStreams: an admin's list shows every admitted stream with its
// label, user and rates, oldest first, and drops each one as it ends.
func TestStreams(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := New(Options{Uplink: 10 * rate})
		defer p.Close()
		start := time.Now()
		handedS, err := p.Admit(t.Context(), Admission{Client: "10.0.0.1", User: "ann", Label: "Music/a.mp3", Rate: rate, Factor: 1.25, Burst: 2 * rate})
		if err != nil {
			t.Fatal(err)
		}
		out := newFakeSink()
		if err := handedS.handTo(out, 20*rate, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		copiedS, err := p.Admit(t.Context(), Admission{Client: "10.0.0.2", Label: "Films/b.mkv", Rate: 2 * rate, Factor: 1})
		if err != nil {
			t.Fatal(err)
		}
		copied := make(chan error, 1)
		go func() {
			_, err := copiedS.Copy(t.Context(), io.Discard, io.LimitReader(zeros{}, 40*rate), 40*rate)
			copied <- err
		}()
		time.Sleep(5 * time.Second)
		synctest.Wait()

		got := p.Streams()
		want := []StreamInfo{
			// Past its 2 s burst: 1 s of it at 10 × rate, then at
			// 1.25 × rate (the budget lends all the headroom).
			{Client: "10.0.0.1", User: "ann", Label: "Music/a.mp3", Rate: rate, Factor: 1.25, Pace: rate * 5 / 4, Started: start, Handed: true},
			// No burst: its own rate from the start, 5 s of it.
			{Client: "10.0.0.2", Label: "Films/b.mkv", Rate: 2 * rate, Factor: 1, Pace: 2 * rate, Sent: 5 * 2 * rate, Started: start.Add(time.Second)},
		}
		if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(StreamInfo{}, "ID", "Sent")); diff != "" {
			t.Errorf("Streams() (-want +got):\n%s", diff)
		}
		if len(got) == 2 {
			if got[0].ID == "" || got[0].ID == got[1].ID {
				t.Errorf("IDs %q and %q, want two different ones", got[0].ID, got[1].ID)
			}
			if sent, _ := out.sum(); got[0].Sent != sent {
				t.Errorf("handed stream: Sent %d, its socket took %d", got[0].Sent, sent)
			}
			// Copy has written its slices of the 5 s, a step at most ahead.
			if got[1].Sent < want[1].Sent || got[1].Sent > want[1].Sent+2*rate {
				t.Errorf("copied stream: Sent %d, want about %d", got[1].Sent, want[1].Sent)
			}
		}

		// The handed stream ends near 15.4 s (1 s of burst, then 18 ×
		// rate at 1.25 × rate), the copy at 21 s.
		time.Sleep(12 * time.Second)
		synctest.Wait()
		if got := p.Streams(); len(got) != 1 || got[0].Label != "Films/b.mkv" {
			t.Errorf("after the first stream ended: %+v", got)
		}
		if err := <-copied; err != nil {
			t.Fatal(err)
		}
		if got := p.Streams(); len(got) != 0 {
			t.Errorf("after both ended: %+v", got)
		}
	})
}

// TestStopHandedInHeap: a handed stream waiting for its next slice is
// ended at once by Stop: its connection closes, its reservation returns,
// its done sees ErrStopped, and it counts as stopped, not cut.
func TestStopHandedInHeap(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := New(Options{Uplink: 2 * rate})
		defer p.Close()
		s, err := p.Admit(t.Context(), Admission{Client: "a", Rate: rate, Factor: 1})
		if err != nil {
			t.Fatal(err)
		}
		out := newFakeSink()
		var doneErr error
		if err := s.handTo(out, 100*rate, func(_ int64, err error) { doneErr = err }); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		id := onlyStream(t, p).ID
		before := time.Now()
		if !p.Stop(id) {
			t.Fatalf("Stop(%q) = false for an active stream", id)
		}
		synctest.Wait()
		if !time.Now().Equal(before) {
			t.Errorf("Stop took %v of the clock, want none", time.Since(before))
		}
		if sent, closed := out.sum(); !closed || sent >= 100*rate {
			t.Errorf("after Stop: %d bytes sent, closed %v; want closed early", sent, closed)
		}
		if !errors.Is(doneErr, ErrStopped) {
			t.Errorf("done(%v), want ErrStopped", doneErr)
		}
		if st := p.Stats(); st.Active != 0 || st.Handed != 0 || st.Reserved != 0 || st.Stopped != 1 || st.Cut != 0 {
			t.Errorf("after Stop: %+v", st)
		}
		if p.Stop(id) {
			t.Error("Stop of a stream that ended = true")
		}
	})
}

// TestStopHandedInAwait: a handed stream whose socket is full waits in
// await; Stop interrupts it rather than waiting for the stall deadline.
func TestStopHandedInAwait(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := New(Options{Stall: time.Minute})
		defer p.Close()
		s, _ := p.Admit(t.Context(), Admission{Client: "a", Rate: rate, Factor: 1, Burst: 2 * rate})
		out := newFakeSink()
		out.blocked = true
		var doneErr error
		s.handTo(out, 100*rate, func(_ int64, err error) { doneErr = err })
		time.Sleep(time.Second)
		synctest.Wait()
		if !p.Stop(onlyStream(t, p).ID) {
			t.Fatal("Stop = false for an active stream")
		}
		synctest.Wait()
		if _, closed := out.sum(); !closed {
			t.Error("stream waiting for its socket not closed by Stop")
		}
		if !errors.Is(doneErr, ErrStopped) {
			t.Errorf("done(%v), want ErrStopped", doneErr)
		}
		if st := p.Stats(); st.Active != 0 || st.Stopped != 1 || st.Cut != 0 {
			t.Errorf("after Stop: %+v", st)
		}
	})
}

// TestStopCopy: a stream paced by Copy returns ErrStopped at once when it
// waits for its next slice, and after the slice under way when Stop comes
// during one.
func TestStopCopy(t *testing.T) {
	t.Parallel()
	t.Run("waiting", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			p := New(Options{})
			defer p.Close()
			s, _ := p.Admit(t.Context(), Admission{Client: "a", Rate: rate, Factor: 1, Burst: rate})
			type result struct {
				n   int64
				err error
			}
			got := make(chan result, 1)
			go func() {
				n, err := s.Copy(t.Context(), io.Discard, io.LimitReader(zeros{}, 100*rate), 100*rate)
				got <- result{n, err}
			}()
			time.Sleep(10 * time.Second)
			synctest.Wait()
			before := time.Now()
			if !p.Stop(onlyStream(t, p).ID) {
				t.Fatal("Stop = false for an active stream")
			}
			r := <-got
			if !errors.Is(r.err, ErrStopped) || r.n >= 100*rate {
				t.Errorf("Copy = %d, %v; want fewer bytes and ErrStopped", r.n, r.err)
			}
			if !time.Now().Equal(before) {
				t.Errorf("Copy returned %v after Stop, want at once", time.Since(before))
			}
			if st := p.Stats(); st.Active != 0 || st.Stopped != 1 {
				t.Errorf("after Stop: %+v", st)
			}
		})
	})
	t.Run("writing", func(t *testing.T) {
		t.Parallel()
		p := New(Options{})
		defer p.Close()
		// A burst of the whole body: Copy never waits.
		s, _ := p.Admit(t.Context(), Admission{Client: "a", Rate: rate, Factor: 1, Burst: 100 * rate})
		w := &stoppingWriter{p: p}
		n, err := s.Copy(t.Context(), w, io.LimitReader(zeros{}, 100*rate), 100*rate)
		if !errors.Is(err, ErrStopped) || n != w.n || n > maxStep {
			t.Errorf("Copy = %d, %v after a stop during its first write (%d bytes written); want ErrStopped within one slice (%d)", n, err, w.n, maxStep)
		}
	})
}

// stoppingWriter stops its stream during the first write that reaches
// it, and counts what it is given.
type stoppingWriter struct {
	p       *Pacer
	n       int64
	stopped bool
}

func (w *stoppingWriter) Write(b []byte) (int, error) {
	w.n += int64(len(b))
	if !w.stopped {
		st := w.p.Streams()
		if len(st) != 1 || !w.p.Stop(st[0].ID) {
			return 0, errors.New("no stream to stop")
		}
		w.stopped = true
	}
	return len(b), nil
}

// TestStopBeforeBody: a stream stopped between its admission and its body
// ends as soon as the body begins, handed or copied.
func TestStopBeforeBody(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := New(Options{})
		defer p.Close()
		a, _ := p.Admit(t.Context(), Admission{Client: "a", Rate: rate})
		b, _ := p.Admit(t.Context(), Admission{Client: "b", Rate: rate})
		for _, st := range p.Streams() {
			if !p.Stop(st.ID) {
				t.Fatalf("Stop(%q) = false", st.ID)
			}
		}
		if st := p.Streams(); len(st) != 2 || !st[0].Stopped || !st[1].Stopped {
			t.Errorf("stopped streams not yet begun: %+v, want both listed as stopped", st)
		}
		out := newFakeSink()
		var doneErr error
		a.handTo(out, 10*rate, func(_ int64, err error) { doneErr = err })
		synctest.Wait()
		if sent, closed := out.sum(); sent != 0 || !closed || !errors.Is(doneErr, ErrStopped) {
			t.Errorf("handed after Stop: %d bytes, closed %v, done(%v); want nothing sent, closed, ErrStopped", sent, closed, doneErr)
		}
		w := &countWriter{start: time.Now()}
		if n, err := b.Copy(t.Context(), w, io.LimitReader(zeros{}, 10*rate), 10*rate); n != 0 || !errors.Is(err, ErrStopped) {
			t.Errorf("Copy after Stop = %d, %v; want 0, ErrStopped", n, err)
		}
		if st := p.Stats(); st.Active != 0 || st.Stopped != 2 {
			t.Errorf("after both: %+v", st)
		}
	})
}

// TestStopUnknown: Stop of an ID that names no stream, or a stream that
// is already stopping, is false and changes nothing.
func TestStopUnknown(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := New(Options{})
		defer p.Close()
		s, _ := p.Admit(t.Context(), Admission{Client: "a", Rate: rate})
		defer s.Release()
		id := onlyStream(t, p).ID
		// Another Pacer (another node, or this one restarted) numbers
		// its streams alike but tags them differently.
		other := New(Options{})
		defer other.Close()
		o, _ := other.Admit(t.Context(), Admission{Client: "a", Rate: rate})
		defer o.Release()
		for _, bad := range []string{"", "1", "nope", onlyStream(t, other).ID, id + "0", strings.ToUpper(id) + "x"} {
			if p.Stop(bad) {
				t.Errorf("Stop(%q) = true, want false (the stream is %q)", bad, id)
			}
		}
		if !p.Stop(id) {
			t.Errorf("Stop(%q) = false", id)
		}
		if p.Stop(id) {
			t.Error("second Stop = true, want false")
		}
		if st := p.Stats(); st.Stopped != 1 {
			t.Errorf("Stopped = %d, want 1", st.Stopped)
		}
	})
}

// onlyStream returns p's one active stream.
func onlyStream(t *testing.T, p *Pacer) StreamInfo {
	t.Helper()
	st := p.Streams()
	if len(st) != 1 {
		t.Fatalf("Streams() = %+v, want one", st)
	}
	return st[0]
}

// TestSetLimitsUplink: a lowered uplink refuses a stream that would have
// fitted, cuts nothing, and lends nothing while the reservations exceed
// it; a raised one admits what is queued.
func TestSetLimitsUplink(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := New(Options{Uplink: 4 * rate})
		defer p.Close()
		var outs []*fakeSink
		for _, who := range []string{"1", "2"} {
			s, err := p.Admit(t.Context(), Admission{Client: who, Rate: rate, Factor: 1.25})
			if err != nil {
				t.Fatal(err)
			}
			out := newFakeSink()
			s.handTo(out, 1000*rate, nil)
			outs = append(outs, out)
		}
		p.SetLimits(rate, 0, false) // below the 2 × rate reserved
		_, err := p.Admit(t.Context(), Admission{Client: "3", Rate: rate})
		var full *FullError
		if !errors.As(err, &full) || full.Free != 0 {
			t.Errorf("a stream that fitted the old uplink: %v, want a FullError with nothing free", err)
		}
		if st := p.Stats(); st.Active != 2 || st.Reserved != 2*rate || st.Uplink != rate {
			t.Errorf("after lowering: %+v, want both streams running", st)
		}
		time.Sleep(20 * time.Second)
		synctest.Wait()
		// Nothing free to lend: each at its reserved rate, not 1.25 ×.
		for _, o := range outs {
			within(t, "stream over an uplink below the reservations, 10 s", float64(o.sentBetween(5*time.Second, 15*time.Second)), 10*rate, 0.03)
		}

		// Queue mode: a new stream waits, and raising the uplink admits
		// it at once.
		p.SetLimits(2*rate, 0, true)
		got := make(chan error, 1)
		go func() {
			s, err := p.Admit(t.Context(), Admission{Client: "3", Rate: rate})
			if err == nil {
				s.Release()
			}
			got <- err
		}()
		synctest.Wait()
		select {
		case err := <-got:
			t.Fatalf("Admit with the budget full and a queue = %v before any change", err)
		default:
		}
		before := time.Now()
		p.SetLimits(3*rate, 0, true)
		if err := <-got; err != nil {
			t.Errorf("queued stream after raising the uplink: %v", err)
		}
		if !time.Now().Equal(before) {
			t.Errorf("queued stream admitted %v after the raise, want at once", time.Since(before))
		}
	})
}

// TestSetLimitsQueueOff: turning the queue off refuses the streams still
// waiting, with a FullError.
func TestSetLimitsQueueOff(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := New(Options{Uplink: rate, Queue: true, QueueWait: time.Minute})
		defer p.Close()
		a, _ := p.Admit(t.Context(), Admission{Client: "1", Rate: rate})
		defer a.Release()
		got := make(chan error, 1)
		go func() {
			_, err := p.Admit(t.Context(), Admission{Client: "2", Rate: rate})
			got <- err
		}()
		synctest.Wait()
		p.SetLimits(rate, 0, false)
		var full *FullError
		if err := <-got; !errors.As(err, &full) {
			t.Errorf("waiting stream after the queue was turned off: %v, want FullError", err)
		}
		if st := p.Stats(); st.Queued != 1 || st.Rejected != 1 || st.Active != 1 {
			t.Errorf("stats %+v", st)
		}
	})
}

// TestSetLimitsPerClient: a per-client limit set live bounds a new
// stream's pace and its client's reservation, which frees budget for
// others.
func TestSetLimitsPerClient(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := New(Options{Uplink: 4 * rate})
		defer p.Close()
		// One client's two streams take the whole budget.
		for range 2 {
			s, err := p.Admit(t.Context(), Admission{Client: "greedy", Rate: 2 * rate, Factor: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Release()
		}
		if _, err := p.Admit(t.Context(), Admission{Client: "new", Rate: 2 * rate, Factor: 1}); err == nil {
			t.Fatal("a third stream fitted a full budget")
		}
		p.SetLimits(4*rate, rate, false)
		// The greedy client now reserves what it may use: rate.
		if st := p.Stats(); st.Reserved != rate {
			t.Errorf("reserved %d after a per-client limit of %d, want %d", st.Reserved, rate, rate)
		}
		s, err := p.Admit(t.Context(), Admission{Client: "new", Rate: 2 * rate, Factor: 1})
		if err != nil {
			t.Fatalf("a stream that fits once the per-client limit shrank the reservations: %v", err)
		}
		out := newFakeSink()
		s.handTo(out, 1000*rate, nil)
		time.Sleep(15 * time.Second)
		synctest.Wait()
		within(t, "new stream of 2 × rate under a per-client limit of rate, 10 s", float64(out.sentBetween(5*time.Second, 15*time.Second)), 10*rate, 0.03)
	})
}
