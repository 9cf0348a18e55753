package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// info is the fs.FileInfo of a test object.
type info struct {
	name string
	size int64
}

func (i info) Name() string       { return i.name }
func (i info) Size() int64        { return i.size }
func (i info) Mode() fs.FileMode  { return 0o444 }
func (i info) ModTime() time.Time { return time.Unix(1700000000, 0) }
func (i info) IsDir() bool        { return false }
func (i info) Sys() any           { return nil }

// span is a fetched range.
type span struct{ Off, N int64 }

// origin serves an object's bytes as a FetchFunc, recording each fetch.
// fail, if set, decides the error of the fetch number call (from 0);
// cut, if set, the number of bytes its body gives before failing.
type origin struct {
	data []byte
	fail func(call int) error
	cut  func(call int) (int, error)
	// pace, if set, delays a fetch's answer and each 32 KiB of its body
	// (tests using it run in a synctest bubble).
	latency, per32K time.Duration

	mu    sync.Mutex
	calls []span
}

func newOrigin(size int, seed uint64) *origin {
	return &origin{data: randomBytes(size, seed)}
}

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := i; j < min(i+8, n); j++ {
			b[j] = byte(v)
			v >>= 8
		}
	}
	return b
}

func (o *origin) object(key string) Object {
	return Object{Info: info{name: "obj.mkv", size: int64(len(o.data))}, Key: key, Fetch: o.fetch}
}

func (o *origin) fetch(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	if off < 0 || n <= 0 || off+n > int64(len(o.data)) {
		return nil, fmt.Errorf("%w: bad range %d+%d", ErrUnavailable, off, n)
	}
	o.mu.Lock()
	call := len(o.calls)
	o.calls = append(o.calls, span{off, n})
	o.mu.Unlock()
	if o.fail != nil {
		if err := o.fail(call); err != nil {
			return nil, err
		}
	}
	if o.latency > 0 {
		if err := sleep(ctx, o.latency); err != nil {
			return nil, err
		}
	}
	b := &body{ctx: ctx, r: bytes.NewReader(o.data[off : off+n]), per32K: o.per32K, left: -1}
	if o.cut != nil {
		b.left, b.err = o.cut(call)
	}
	return b, nil
}

// fetched returns the fetches so far.
func (o *origin) fetched() []span {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.calls)
}

// body is a fetch's answer.
type body struct {
	ctx    context.Context
	r      *bytes.Reader
	per32K time.Duration
	left   int   // bytes before err; -1: no cut
	err    error // at the cut
}

func (b *body) Read(p []byte) (int, error) {
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	if b.left == 0 {
		return 0, b.err
	}
	p = p[:min(len(p), 32<<10)]
	if b.left > 0 {
		p = p[:min(len(p), b.left)]
	}
	if b.per32K > 0 {
		if err := sleep(b.ctx, b.per32K); err != nil {
			return 0, err
		}
	}
	n, err := b.r.Read(p)
	if b.left > 0 {
		b.left -= n
	}
	return n, err
}

func (b *body) Close() error { return nil }

// readAll reads f to its end in reads of size chunk.
func readAll(t *testing.T, f io.Reader, chunk int) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, chunk)
	for {
		n, err := f.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read after %d bytes: %v", len(out), err)
		}
	}
}

func TestRemoteReadsObject(t *testing.T) {
	t.Parallel()
	o := newOrigin(3<<20+12345, 1)
	tests := []struct {
		name  string
		seek  int64
		chunk int
		opt   RemoteOptions
	}{
		{name: "32 KiB reads from 0", chunk: 32 << 10},
		{name: "32 KiB reads from the middle", seek: 1<<20 + 777, chunk: 32 << 10},
		{name: "odd reads, small read-ahead", seek: 5, chunk: 10007, opt: RemoteOptions{ReadAhead: 100 << 10}},
		{name: "1 MiB reads", chunk: 1 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := OpenRemote(t.Context(), o.object(""), tt.opt)
			defer f.Close()
			if _, err := f.Seek(tt.seek, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, f, tt.chunk); !bytes.Equal(got, o.data[tt.seek:]) {
				t.Errorf("read %d bytes, not the object's %d from %d", len(got), len(o.data)-int(tt.seek), tt.seek)
			}
		})
	}
}

// FuzzRemoteFile drives a remote file (with and without a cache) by
// random Seeks, Reads and ReadAts and checks each answer against the
// bytes, as bytes.Reader gives them.
func FuzzRemoteFile(f *testing.F) {
	f.Add(uint16(20000), uint8(0), []byte{0, 0, 0, 0, 40, 1, 0, 0, 0, 40, 1, 0, 0, 0, 40})
	f.Add(uint16(65535), uint8(1), []byte{2, 128, 0, 0, 100, 1, 0, 0, 255, 255, 1, 0, 0, 255, 255, 3, 0, 0, 0, 0})
	f.Add(uint16(0), uint8(2), []byte{1, 0, 0, 0, 10, 4, 0, 0, 0, 1})
	f.Add(uint16(9000), uint8(3), []byte{3, 255, 255, 0, 10, 2, 250, 0, 1, 0, 1, 10, 0, 10, 0, 4, 1, 0, 0, 1})
	f.Fuzz(checkRandomAccess)
}

// checkRandomAccess is FuzzRemoteFile's check of one input: an object of
// size16*8 bytes, read-ahead, cache (mode) and operations from ops.
func checkRandomAccess(t *testing.T, size16 uint16, mode uint8, ops []byte) {
	size := int(size16) * 8 // up to 512 KiB
	o := newOrigin(size, uint64(size16))
	opt := RemoteOptions{ReadAhead: 64 << 10 << (mode % 3)}
	key := ""
	if mode&4 != 0 {
		c, err := newCache(t.TempDir(), 4*(64<<10), 64<<10)
		if err != nil {
			t.Fatal(err)
		}
		opt.Cache, key = c, "k"
	}
	file := OpenRemote(t.Context(), o.object(key), opt)
	defer file.Close()
	oracle := bytes.NewReader(o.data)
	for len(ops) >= 5 {
		op, a, b := ops[0], int64(ops[1])<<8|int64(ops[2]), int(ops[3])<<8|int(ops[4])
		ops = ops[5:]
		off := a*int64(size+2)/65535 - 1 // from -1 to past the end
		n := b
		if op&8 != 0 {
			n *= 8 // big reads
		}
		switch op % 5 {
		case 0, 1: // Read
			pos, _ := oracle.Seek(0, io.SeekCurrent)
			p := make([]byte, n)
			got, err := file.Read(p)
			if err := checkRead(o.data, pos, n, p[:got], err); err != nil {
				t.Fatalf("Read(%d) at %d: %v", n, pos, err)
			}
			oracle.Seek(int64(got), io.SeekCurrent)
		case 2: // ReadAt
			p := make([]byte, n)
			got, err := file.ReadAt(p, off)
			want := make([]byte, n)
			wantN, wantErr := oracle.ReadAt(want, off)
			if n == 0 && off >= 0 {
				wantN, wantErr = 0, nil // as *os.File: nothing asked, nothing wrong
			}
			if got != wantN || (err == nil) != (wantErr == nil) || (wantErr == io.EOF) != (err == io.EOF) || !bytes.Equal(p[:got], want[:wantN]) {
				t.Fatalf("ReadAt(%d, %d) = %d, %v; want %d, %v", n, off, got, err, wantN, wantErr)
			}
		default: // Seek
			whence := int(op/5) % 3
			rel := off
			if whence != io.SeekStart {
				rel = off - int64(size)/2
			}
			got, err := file.Seek(rel, whence)
			want, wantErr := oracle.Seek(rel, whence)
			if (err == nil) != (wantErr == nil) || err == nil && got != want {
				t.Fatalf("Seek(%d, %d) = %d, %v; want %d, %v", rel, whence, got, err, want, wantErr)
			}
		}
	}
}

// checkRead checks a Read of n bytes at pos that gave got and err.
func checkRead(data []byte, pos int64, n int, got []byte, err error) error {
	switch {
	case n == 0:
		if len(got) != 0 || err != nil {
			return fmt.Errorf("an empty read gave %d bytes, %v", len(got), err)
		}
	case pos >= int64(len(data)):
		if len(got) != 0 || err != io.EOF {
			return fmt.Errorf("at the end: %d bytes, %v; want io.EOF", len(got), err)
		}
	case err != nil:
		return err
	case len(got) == 0:
		return errors.New("no bytes and no error")
	case !bytes.Equal(got, data[pos:pos+int64(len(got))]):
		return fmt.Errorf("wrong bytes (%d)", len(got))
	}
	return nil
}

// TestReadAheadNeverWaits streams from an origin that answers after 30
// ms at 16 Mbit/s to a reader taking 32 KiB every 100 ms, in a synctest
// bubble: after the first two reads, no Read waits for the origin (the
// fake clock does not move during one).
func TestReadAheadNeverWaits(t *testing.T) {
	t.Parallel()
	for _, cached := range []bool{false, true} {
		t.Run(fmt.Sprint("cache=", cached), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				o := newOrigin(12<<20, 2)
				o.latency, o.per32K = 30*time.Millisecond, 16*time.Millisecond
				opt, key := RemoteOptions{}, ""
				if cached {
					c, err := NewCache(t.TempDir(), 64<<20)
					if err != nil {
						t.Fatal(err)
					}
					opt.Cache, key = c, "k"
				}
				f := OpenRemote(t.Context(), o.object(key), opt)
				defer f.Close()
				start := int64(1<<20 + 4096) // as after ServeContent's Seek
				if _, err := f.Seek(start, io.SeekStart); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 32<<10)
				var waited []int
				for i, pos := 0, start; ; i++ {
					before := time.Now()
					n, err := f.Read(buf)
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(buf[:n], o.data[pos:pos+int64(n)]) {
						t.Fatalf("read %d: wrong bytes at %d", i, pos)
					}
					pos += int64(n)
					if i >= 2 && time.Since(before) > 0 {
						waited = append(waited, i)
					}
					time.Sleep(100 * time.Millisecond) // the client's pace
				}
				if len(waited) > 0 {
					t.Errorf("reads %v waited for the origin", waited)
				}
			})
		})
	}
}

// TestReadAheadFollowsPace streams in a synctest bubble from an origin
// that answers after 50 ms at 32 MB/s, to readers of 32 KiB at various
// paces: the read-ahead's windows (the fetches after the first, a piece)
// grow to ReadAhead for a fast reader and stay small for a slow one,
// and once warmed no read of a steady reader waits for the origin.
func TestReadAheadFollowsPace(t *testing.T) {
	t.Parallel()
	const k = 32 << 10
	tests := []struct {
		name string
		size int
		// gap is the pause after a read that ended at pos; stop, if
		// not 0, abandons the stream after this long.
		gap  func(pos int64) time.Duration
		stop time.Duration
		// steady: no read waits for the origin once warm bytes are
		// read (the windows' first doublings are quicker for a fast
		// reader than a fetch).
		steady         bool
		warm           int64
		wantMaxAtLeast int64 // the biggest window
		wantMaxAtMost  int64
		wantOverAtMost float64 // bytes fetched / bytes read
	}{
		{name: "64 KiB/s", size: 3 << 20, gap: func(int64) time.Duration { return 500 * time.Millisecond },
			steady: true, warm: 2 * k, wantMaxAtMost: 256 << 10, wantOverAtMost: 1.1},
		{name: "3.2 MB/s", size: 24 << 20, gap: func(int64) time.Duration { return 10 * time.Millisecond },
			steady: true, warm: 1 << 20, wantMaxAtLeast: defaultReadAhead, wantMaxAtMost: defaultReadAhead},
		{name: "as fast as the origin", size: 16 << 20, gap: func(int64) time.Duration { return 0 },
			wantMaxAtLeast: defaultReadAhead, wantMaxAtMost: defaultReadAhead},
		// A player's start: a burst, then its bitrate (256 kbit/s), and
		// it leaves after 20 s.
		{name: "burst, then 32 KiB/s, abandoned", size: 8 << 20, gap: func(pos int64) time.Duration {
			if pos < 256<<10 {
				return 0
			}
			return time.Second
		}, stop: 20 * time.Second, wantMaxAtMost: 512 << 10, wantOverAtMost: 1.4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				o := newOrigin(tt.size, 14)
				o.latency, o.per32K = 50*time.Millisecond, time.Millisecond
				f := OpenRemote(t.Context(), o.object(""), RemoteOptions{})
				start := time.Now()
				buf := make([]byte, k)
				var waited []int
				pos := int64(0)
				for i := 0; tt.stop == 0 || time.Since(start) < tt.stop; i++ {
					before := time.Now()
					n, err := f.Read(buf)
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(buf[:n], o.data[pos:pos+int64(n)]) {
						t.Fatalf("read %d: wrong bytes at %d", i, pos)
					}
					if pos >= tt.warm && time.Since(before) > 0 {
						waited = append(waited, i)
					}
					pos += int64(n)
					time.Sleep(tt.gap(pos))
				}
				if err := f.Close(); err != nil {
					t.Fatal(err)
				}
				var most, fetched int64
				for i, s := range o.fetched() {
					fetched += s.N
					if i > 0 {
						most = max(most, s.N)
					}
				}
				over := float64(fetched) / float64(pos)
				t.Logf("read %d bytes in %v; fetched %d (%.2f x) in %d requests, the biggest %d; %d reads waited",
					pos, time.Since(start), fetched, over, len(o.fetched()), most, len(waited))
				if tt.steady && len(waited) > 0 {
					t.Errorf("reads %v waited for the origin", waited)
				}
				if most < tt.wantMaxAtLeast || most > tt.wantMaxAtMost {
					t.Errorf("the biggest window is %d bytes, want %d to %d", most, tt.wantMaxAtLeast, tt.wantMaxAtMost)
				}
				if tt.wantOverAtMost > 0 && over > tt.wantOverAtMost {
					t.Errorf("fetched %.2f x the bytes read, want at most %.2f", over, tt.wantOverAtMost)
				}
			})
		})
	}
}

// TestNextWindow checks the read-ahead's sizing rule on its own.
func TestNextWindow(t *testing.T) {
	t.Parallel()
	const unit, most = 64 << 10, 4 << 20
	// paced is a reader that took 1 s for bytes, with ahead fetched.
	paced := func(bytes, ahead int64) pace {
		return pace{read: bytes, in: time.Second, ahead: ahead, fetch: 0}
	}
	tests := []struct {
		name string
		size int64
		p    pace
		want int64
	}{
		{"waited", 256 << 10, pace{waited: true, read: 1, in: time.Second, ahead: 10 << 20}, 512 << 10},
		{"too fast to measure", 256 << 10, pace{}, 512 << 10},
		{"at most most", most, pace{waited: true}, most},
		{"would not last: grow", 128 << 10, paced(200<<10, 128<<10), 256 << 10},
		{"lasts: keep", 128 << 10, paced(64<<10, 128<<10), 128 << 10},
		{"lasts 4 x: shrink to twice need", 1 << 20, paced(64<<10, 1<<20), 128 << 10},
		{"paused: least", 1 << 20, paced(0, 1<<20), unit},
		{"the fetch's time counts", 128 << 10, pace{read: 64 << 10, in: time.Second, ahead: 128 << 10, fetch: 2 * time.Second}, 256 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := nextWindow(tt.size, unit, most, tt.p); got != tt.want {
				t.Errorf("nextWindow(%d, %+v) = %d, want %d", tt.size, tt.p, got, tt.want)
			}
		})
	}
}

// gatedOrigin answers a fetch only when the test releases it.
type gatedOrigin struct {
	data    []byte
	mu      sync.Mutex
	pending map[span]chan struct{}
}

func (g *gatedOrigin) fetch(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	ch := make(chan struct{})
	g.mu.Lock()
	g.pending[span{off, n}] = ch
	g.mu.Unlock()
	select {
	case <-ch:
		return io.NopCloser(bytes.NewReader(g.data[off : off+n])), nil
	case <-ctx.Done():
		g.mu.Lock()
		delete(g.pending, span{off, n})
		g.mu.Unlock()
		return nil, ctx.Err()
	}
}

// waiting returns the fetches waiting to be released, once every
// goroutine of the bubble is blocked.
func (g *gatedOrigin) waiting() []span {
	synctest.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	var s []span
	for k := range g.pending {
		s = append(s, k)
	}
	slices.SortFunc(s, func(a, b span) int { return int(a.Off - b.Off) })
	return s
}

// release answers the waiting fetch s.
func (g *gatedOrigin) release(t *testing.T, s span) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	ch, ok := g.pending[s]
	if !ok {
		t.Fatalf("no fetch %+v waits", s)
	}
	close(ch)
	delete(g.pending, s)
}

// TestReadAheadFetchesNextWindow follows the fetches of a sequential
// reader step by step: the window after the one being read is asked
// for before the reader gets there, and the reader then takes it without
// any fetch; no third window is fetched while two are held.
func TestReadAheadFetchesNextWindow(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := &gatedOrigin{data: randomBytes(1<<20, 3), pending: map[span]chan struct{}{}}
		o := Object{Info: info{name: "x.mp3", size: 1 << 20}, Fetch: g.fetch}
		f := OpenRemote(t.Context(), o, RemoteOptions{})
		defer f.Close()

		const k = 32 << 10
		read := func() chan error {
			done := make(chan error, 1)
			go func() {
				buf := make([]byte, k)
				n, err := io.ReadFull(f, buf)
				if err == nil && !bytes.Equal(buf, g.data[:n]) && n != k {
					err = errors.New("short read")
				}
				done <- err
			}()
			return done
		}
		// expect checks what waits for the origin and whether the
		// read has returned.
		expect := func(step string, want []span, done chan error, returned bool) {
			t.Helper()
			if diff := cmp.Diff(want, g.waiting()); diff != "" {
				t.Errorf("%s: fetches waiting (-want +got):\n%s", step, diff)
			}
			select {
			case err := <-done:
				if !returned {
					t.Fatalf("%s: the read returned (%v) before its bytes were fetched", step, err)
				}
				if err != nil {
					t.Fatalf("%s: %v", step, err)
				}
			default:
				if returned {
					t.Fatalf("%s: the read waits", step)
				}
			}
		}

		done := read()
		expect("first read", []span{{0, k}}, done, false) // a piece
		g.release(t, span{0, k})
		expect("first read released", nil, done, true)

		done = read() // continues: the read-ahead starts
		expect("second read", []span{{k, 64 << 10}}, done, false)
		g.release(t, span{k, 64 << 10})
		// The reader has its bytes, and the next window is asked for.
		expect("second read released", []span{{k + 64<<10, 128 << 10}}, done, true)
		g.release(t, span{k + 64<<10, 128 << 10})

		done = read() // the rest of window 1: no fetch
		expect("third read", nil, done, true)
		done = read() // into window 2, fetched ahead; window 3 is asked for
		expect("fourth read", []span{{k + 192<<10, 256 << 10}}, done, true)
	})
}

// TestProbeFetchesLittle reads a 50 MiB object as the probe does —
// header, tail, three samples — and checks that it fetches little.
func TestProbeFetchesLittle(t *testing.T) {
	t.Parallel()
	o := newOrigin(50<<20, 4)
	size := int64(len(o.data))
	var probe []span
	for off := int64(0); off < 60<<10; off += 1500 { // walking header boxes
		probe = append(probe, span{off, 16}, span{off + 16, 200})
	}
	probe = append(probe, span{size - 128, 128}, span{size - 10<<10, 4096})
	for _, at := range []int64{size / 4, size / 2, 3 * size / 4} {
		probe = append(probe, span{at, 4096}, span{at + 4096, 4096})
	}
	tests := []struct {
		name string
		read func(f File, s span) ([]byte, error)
	}{
		{"ReadAt", func(f File, s span) ([]byte, error) {
			p := make([]byte, s.N)
			_, err := f.ReadAt(p, s.Off)
			return p, err
		}},
		{"Seek and Read", func(f File, s span) ([]byte, error) {
			p := make([]byte, s.N)
			if _, err := f.Seek(s.Off, io.SeekStart); err != nil {
				return nil, err
			}
			_, err := io.ReadFull(f, p)
			return p, err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c Counters
			f := OpenRemote(t.Context(), o.object(""), RemoteOptions{Counters: &c})
			defer f.Close()
			for _, s := range probe {
				p, err := tt.read(f, s)
				if err != nil {
					t.Fatalf("%+v: %v", s, err)
				}
				if !bytes.Equal(p, o.data[s.Off:s.Off+s.N]) {
					t.Fatalf("%+v: wrong bytes", s)
				}
			}
			got := c.Counts()
			t.Logf("%d bytes in %d fetches", got.FetchedBytes, got.Fetches)
			if got.FetchedBytes > 512<<10 || got.Fetches > 12 {
				t.Errorf("the probe fetched %d bytes in %d requests, want at most 512 KiB in 12: %v",
					got.FetchedBytes, got.Fetches, o.fetched())
			}
		})
	}
}

// TestChangedIsFinal: a fetch that finds the object changed is not
// repeated, and every later read fails with it.
func TestChangedIsFinal(t *testing.T) {
	t.Parallel()
	o := newOrigin(1<<20, 5)
	changed := fmt.Errorf("%w: %w: ETag differs", ErrChanged, ErrUnavailable)
	o.fail = func(call int) error {
		if call >= 1 {
			return changed
		}
		return nil
	}
	f := OpenRemote(t.Context(), o.object(""), RemoteOptions{})
	defer f.Close()
	p := make([]byte, 100)
	if _, err := f.ReadAt(p, 0); err != nil {
		t.Fatalf("first read: %v", err)
	}
	if _, err := f.ReadAt(p, 500<<10); !errors.Is(err, ErrChanged) {
		t.Fatalf("read after the change: %v, want ErrChanged", err)
	}
	calls := len(o.fetched())
	if calls != 2 {
		t.Errorf("%d fetches, want 2 (no retry)", calls)
	}
	// Even bytes held in memory are not given any more.
	if _, err := f.ReadAt(p, 0); !errors.Is(err, ErrChanged) {
		t.Errorf("ReadAt of a fetched piece: %v, want ErrChanged", err)
	}
	if _, err := f.Read(p); !errors.Is(err, ErrChanged) {
		t.Errorf("Read: %v, want ErrChanged", err)
	}
	if got := len(o.fetched()); got != calls {
		t.Errorf("%d more fetches after the change", got-calls)
	}
}

// TestRetries checks which failed fetches are repeated, in a bubble
// (the backoff takes no real time).
func TestRetries(t *testing.T) {
	t.Parallel()
	unavailable := fmt.Errorf("%w: 503", ErrUnavailable)
	tests := []struct {
		name      string
		fail      []error                     // by call; nil: succeed
		cut       func(call int) (int, error) // a body cut short
		wantCalls int
		wantErr   []error
	}{
		{name: "unavailable twice", fail: []error{unavailable, unavailable}, wantCalls: 3},
		{name: "unavailable thrice", fail: []error{unavailable, unavailable, unavailable}, wantCalls: 3, wantErr: []error{ErrUnavailable}},
		{name: "not found", fail: []error{fmt.Errorf("%w: 404", fs.ErrNotExist)}, wantCalls: 1, wantErr: []error{fs.ErrNotExist}},
		{name: "timeout", fail: []error{fmt.Errorf("%w: slow", ErrTimeout)}, wantCalls: 1, wantErr: []error{ErrTimeout}},
		{name: "changed", fail: []error{fmt.Errorf("%w: %w", ErrChanged, ErrUnavailable)}, wantCalls: 1, wantErr: []error{ErrChanged}},
		{name: "empty body", cut: func(call int) (int, error) {
			if call == 0 {
				return 0, io.EOF
			}
			return -1, nil
		}, wantCalls: 2},
		{name: "body cut after bytes", cut: func(int) (int, error) { return 1000, io.EOF }, wantCalls: 1,
			wantErr: []error{ErrUnavailable, io.ErrUnexpectedEOF}},
		{name: "body error after bytes", cut: func(int) (int, error) { return 1000, unavailable }, wantCalls: 1,
			wantErr: []error{unavailable}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				o := newOrigin(100<<10, 6)
				o.fail = func(call int) error {
					if call < len(tt.fail) {
						return tt.fail[call]
					}
					return nil
				}
				o.cut = tt.cut
				var c Counters
				f := OpenRemote(t.Context(), o.object(""), RemoteOptions{Counters: &c})
				defer f.Close()
				p := make([]byte, 10<<10)
				_, err := f.ReadAt(p, 0)
				for _, want := range tt.wantErr {
					if !errors.Is(err, want) {
						t.Errorf("error %v, want one wrapping %v", err, want)
					}
				}
				if len(tt.wantErr) == 0 && (err != nil || !bytes.Equal(p, o.data[:len(p)])) {
					t.Errorf("read: %v (or wrong bytes)", err)
				}
				if got := len(o.fetched()); got != tt.wantCalls {
					t.Errorf("%d fetches, want %d", got, tt.wantCalls)
				}
				if got := c.Counts(); got.Fetches != int64(tt.wantCalls) || got.Retries != int64(tt.wantCalls-1) {
					t.Errorf("counted %+v, want %d fetches, %d retries", got, tt.wantCalls, tt.wantCalls-1)
				}
			})
		})
	}
}

// TestStreamError: a fetch error in the read-ahead reaches the reader,
// after the bytes that came before it.
func TestStreamError(t *testing.T) {
	t.Parallel()
	o := newOrigin(2<<20, 7)
	o.fail = func(call int) error {
		if call == 3 {
			return fmt.Errorf("%w: boom", fs.ErrPermission)
		}
		return nil
	}
	f := OpenRemote(t.Context(), o.object(""), RemoteOptions{})
	defer f.Close()
	var got []byte
	buf := make([]byte, 32<<10)
	var err error
	for err == nil {
		var n int
		n, err = f.Read(buf)
		got = append(got, buf[:n]...)
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("error %v, want the fetch's", err)
	}
	if !bytes.Equal(got, o.data[:len(got)]) {
		t.Errorf("wrong bytes before the error")
	}
}

func TestCloseEndsReadAhead(t *testing.T) {
	t.Parallel()
	// synctest.Test fails if a goroutine of the bubble outlives it: no
	// count of the process's goroutines, which other tests change.
	synctest.Test(t, func(t *testing.T) {
		o := newOrigin(8<<20, 8)
		var files []File
		for range 10 {
			f := OpenRemote(context.Background(), o.object(""), RemoteOptions{})
			buf := make([]byte, 32<<10)
			for range 3 { // two reads start the read-ahead
				if _, err := f.Read(buf); err != nil {
					t.Fatal(err)
				}
			}
			files = append(files, f)
		}
		for _, f := range files {
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestCloseEndsReadAheadInBubble: synctest.Test fails if a goroutine of
// the bubble is left, so every read-ahead must end with Close, also
// those waiting on a fetch that never answers.
func TestCloseEndsReadAheadInBubble(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		g := &gatedOrigin{data: randomBytes(1<<20, 9), pending: map[span]chan struct{}{}}
		f := OpenRemote(context.Background(), Object{Info: info{name: "a.flac", size: 1 << 20}, Fetch: g.fetch}, RemoteOptions{})
		go f.Read(make([]byte, 100)) // waits on the origin
		g.waiting()
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if got := g.waiting(); len(got) != 0 {
			t.Errorf("fetches still waiting after Close: %v", got)
		}
	})
}

func TestCloseSemantics(t *testing.T) {
	t.Parallel()
	o := newOrigin(1000, 10)
	f := OpenRemote(t.Context(), o.object(""), RemoteOptions{})
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 10)
	checks := map[string]error{"Close": f.Close()}
	_, checks["Read"] = f.Read(p)
	_, checks["ReadAt"] = f.ReadAt(p, 0)
	_, checks["Seek"] = f.Seek(0, io.SeekStart)
	for op, err := range checks {
		if !errors.Is(err, fs.ErrClosed) {
			t.Errorf("%s after Close: %v, want fs.ErrClosed", op, err)
		}
	}
	if n := len(o.fetched()); n != 0 {
		t.Errorf("%d fetches after Close", n)
	}
}

func TestCancelledContext(t *testing.T) {
	t.Parallel()
	o := newOrigin(1000, 11)
	ctx, cancel := context.WithCancel(t.Context())
	f := OpenRemote(ctx, o.object(""), RemoteOptions{})
	defer f.Close()
	p := make([]byte, 10)
	if _, err := f.ReadAt(p, 0); err != nil {
		t.Fatal(err)
	}
	cancel()
	// The bytes are in memory, yet the reads end with the context.
	if _, err := f.ReadAt(p, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadAt: %v, want context.Canceled", err)
	}
	if _, err := f.Read(p); !errors.Is(err, context.Canceled) {
		t.Errorf("Read: %v, want context.Canceled", err)
	}
}

func TestEdgeReads(t *testing.T) {
	t.Parallel()
	o := newOrigin(1000, 12)
	f := OpenRemote(t.Context(), o.object(""), RemoteOptions{})
	defer f.Close()
	p := make([]byte, 100)
	if n, err := f.ReadAt(p, 950); n != 50 || err != io.EOF || !bytes.Equal(p[:n], o.data[950:]) {
		t.Errorf("ReadAt across the end = %d, %v; want 50, io.EOF", n, err)
	}
	if n, err := f.ReadAt(p, 1000); n != 0 || err != io.EOF {
		t.Errorf("ReadAt at the end = %d, %v; want 0, io.EOF", n, err)
	}
	if _, err := f.ReadAt(p, -1); err == nil {
		t.Error("ReadAt(-1) did not fail")
	}
	if _, err := f.Seek(-1, io.SeekStart); err == nil {
		t.Error("Seek(-1) did not fail")
	}
	if off, err := f.Seek(5000, io.SeekStart); off != 5000 || err != nil {
		t.Errorf("Seek past the end = %d, %v", off, err)
	}
	if n, err := f.Read(p); n != 0 || err != io.EOF {
		t.Errorf("Read past the end = %d, %v; want 0, io.EOF", n, err)
	}
	if info, err := f.Stat(); err != nil || info.Size() != 1000 {
		t.Errorf("Stat = %v, %v", info, err)
	}
	empty := OpenRemote(t.Context(), newOrigin(0, 0).object(""), RemoteOptions{})
	defer empty.Close()
	if n, err := empty.Read(p); n != 0 || err != io.EOF {
		t.Errorf("Read of an empty file = %d, %v; want 0, io.EOF", n, err)
	}
}

// TestConcurrentReadAt reads one file from 8 goroutines at once while a
// ninth streams it (run with -race).
func TestConcurrentReadAt(t *testing.T) {
	t.Parallel()
	o := newOrigin(2<<20, 13)
	f := OpenRemote(t.Context(), o.object(""), RemoteOptions{ReadAhead: 256 << 10})
	defer f.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 9)
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 50 {
				off, n := r.Int64N(int64(len(o.data))), r.IntN(100<<10)+1
				p := make([]byte, n)
				got, err := f.ReadAt(p, off)
				if err != nil && err != io.EOF || !bytes.Equal(p[:got], o.data[off:off+int64(got)]) {
					errs <- fmt.Errorf("ReadAt(%d, %d) = %d, %v or wrong bytes", n, off, got, err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		if got, err := io.ReadAll(f); err != nil || !bytes.Equal(got, o.data) {
			errs <- fmt.Errorf("ReadAll: %v or wrong bytes", err)
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestStall: a fetch whose storage goes quiet for RemoteOptions.Stall —
// before answering, or in the middle of a body — fails with ErrTimeout,
// once (not retried); a slow storage that keeps sending does not.
func TestStall(t *testing.T) {
	t.Parallel()
	const stall = 3 * time.Second
	for _, tt := range []struct {
		name            string
		latency, per32K time.Duration
		wantErr         bool
	}{
		{name: "no answer", latency: time.Hour, wantErr: true},
		{name: "body stops", per32K: time.Hour, wantErr: true},
		{name: "slow but steady", per32K: stall - time.Second},
	} {
		for _, read := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/read=%v", tt.name, read), func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					o := newOrigin(256<<10, 8)
					o.latency, o.per32K = tt.latency, tt.per32K
					f := OpenRemote(t.Context(), o.object(""), RemoteOptions{Stall: stall})
					defer f.Close()
					start := time.Now()
					p := make([]byte, 128<<10)
					var err error
					if read {
						// A stream's reads: sequential, through the read-ahead.
						_, err = io.ReadFull(f, p)
					} else {
						_, err = f.ReadAt(p, 0)
					}
					took := time.Since(start)
					if !tt.wantErr {
						if err != nil || !bytes.Equal(p, o.data[:len(p)]) {
							t.Errorf("read: %v (or wrong bytes)", err)
						}
						return
					}
					if !errors.Is(err, ErrTimeout) || took != stall {
						t.Errorf("read: %v after %v; want ErrTimeout after %v", err, took, stall)
					}
					if n := len(o.fetched()); n != 1 {
						t.Errorf("%d fetches; a stall is not retried", n)
					}
				})
			})
		}
	}
}

// TestStallReadAhead: the stall timer also ends a read-ahead's fetch, and
// the reader waiting on it gets the error (a stream's reads: the first
// fetch answers, the read-ahead's never does).
func TestStallReadAhead(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const stall = 3 * time.Second
		o := newOrigin(4<<20, 9)
		var calls atomic.Int32
		obj := o.object("")
		obj.Fetch = func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
			if calls.Add(1) > 1 {
				<-ctx.Done() // the origin went quiet; the transport then
				// says "unavailable", as a body cut by a cancelled
				// request does, not "cancelled"
				return nil, fmt.Errorf("%w: request ended", ErrUnavailable)
			}
			return o.fetch(ctx, off, n)
		}
		f := OpenRemote(t.Context(), obj, RemoteOptions{Stall: stall})
		defer f.Close()
		p := make([]byte, 32<<10)
		if _, err := io.ReadFull(f, p); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		var err error
		for err == nil && time.Since(start) < time.Hour {
			_, err = io.ReadFull(f, p)
		}
		if !errors.Is(err, ErrTimeout) || time.Since(start) != stall {
			t.Errorf("reads after the origin went quiet: %v after %v; want ErrTimeout after %v", err, time.Since(start), stall)
		}
		// Not retried, though the fetch's error says "unavailable" too: a
		// retry would keep the client waiting a stall more each time.
		if n := calls.Load(); n != 2 {
			t.Errorf("%d fetches, want 2 (the first, and the one that stalled)", n)
		}
	})
}

// TestCloseDuringReads: Close while another goroutine reads (and starts
// read-aheads) neither panics nor leaves a goroutine (the bubble checks).
func TestCloseDuringReads(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		o := newOrigin(1<<20, 10)
		for range 50 {
			f := OpenRemote(context.Background(), o.object(""), RemoteOptions{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				buf := make([]byte, 16<<10)
				for {
					if _, err := f.Read(buf); err != nil {
						return
					}
				}
			}()
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			<-done
		}
	})
}
