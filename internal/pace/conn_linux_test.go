package pace

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// handOver starts a stream of f's bytes [off, off+n) on a real loopback
// connection and returns the client's end.
func handOver(t *testing.T, p *Pacer, f *os.File, a Admission, off, n int64) net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// A fixed receive buffer: autotuning may grow it to tcp_rmem's
	// maximum (32 MiB here), and then a whole file fits in the buffers.
	c.(*net.TCPConn).SetReadBuffer(256 << 10)
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Admit(t.Context(), a)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Hand(sc.(*net.TCPConn), f, off, n, nil); err != nil {
		t.Fatal(err)
	}
	return c
}

func tempFile(t *testing.T, size int) (*os.File, []byte) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	name := filepath.Join(t.TempDir(), "media")
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, data
}

// TestHandSendsExactBytes: streams handed over on real sockets get exactly
// their range of the file, from one shared descriptor, and the connection
// is closed at the end.
func TestHandSendsExactBytes(t *testing.T) {
	t.Parallel()
	// Larger than the socket buffers (the client's receive buffer is
	// fixed, the sender's at most 4 MiB): the whole-file stream cannot
	// finish before the client reads, so its shared descriptor is still
	// open when counted (with 3 MiB every stream could end first, and CI
	// once counted 0).
	f, data := tempFile(t, 8<<20+12345)
	p := New(Options{})
	defer p.Close()
	ranges := [][2]int64{{0, int64(len(data))}, {1 << 20, 2 << 20}, {int64(len(data)) - 1, 1}}
	conns := make([]net.Conn, len(ranges))
	for i, r := range ranges {
		// A burst covering the whole range: the test checks bytes, not time.
		conns[i] = handOver(t, p, f, Admission{Client: "c", Rate: 1 << 20, Factor: 1, Burst: r[1]}, r[0], r[1])
	}
	if n := p.files.open(); n != 1 {
		t.Errorf("%d shared descriptors for one file, want 1", n)
	}
	// The caller may close its own descriptor at once.
	f.Close()
	for i, c := range conns {
		got, err := io.ReadAll(c) // ends when the loop closes the connection
		if err != nil {
			t.Fatal(err)
		}
		r := ranges[i]
		if !bytes.Equal(got, data[r[0]:r[0]+r[1]]) {
			t.Errorf("range %v: got %d bytes, not the file's", r, len(got))
		}
	}
	if err := p.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := p.files.open(); n != 0 {
		t.Errorf("%d shared descriptors left open", n)
	}
}

// TestHandClientLeaves: a client that closes mid-stream ends the stream
// and returns its reservation; the slow path (a full socket) delivers
// exact bytes to a client that reads late.
func TestHandClientLeaves(t *testing.T) {
	t.Parallel()
	f, data := tempFile(t, 16<<20)
	p := New(Options{Uplink: 100 << 20})
	defer p.Close()
	leaving := handOver(t, p, f, Admission{Client: "a", Rate: 1 << 20, Factor: 1, Burst: 8 << 20}, 0, int64(len(data)))
	late := handOver(t, p, f, Admission{Client: "b", Rate: 1 << 20, Factor: 1, Burst: 16 << 20}, 0, int64(len(data)))
	buf := make([]byte, 1000)
	if _, err := io.ReadFull(leaving, buf); err != nil {
		t.Fatal(err)
	}
	leaving.(*net.TCPConn).SetLinger(0)
	leaving.Close()
	// The late reader's socket fills during the 16 MiB burst, so its
	// stream waits for the socket in await; reading then drains it.
	got, err := io.ReadAll(late)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("late reader: %d bytes, not the file's", len(got))
	}
	// The leaving stream ends on its next write's error: Shutdown then
	// finds nothing to cut.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("stream of a client that left did not end: %v, %+v", err, p.Stats())
	}
	if st := p.Stats(); st.Reserved != 0 || st.Handed != 0 || st.Cut != 0 {
		t.Errorf("after both ended: %+v", st)
	}
}

// TestHandStalledClientIsCut: a client that reads nothing is cut within
// two stall periods once its socket is full, and its reservation returns.
func TestHandStalledClientIsCut(t *testing.T) {
	t.Parallel()
	f, _ := tempFile(t, 32<<20)
	p := New(Options{Stall: 200 * time.Millisecond})
	defer p.Close()
	c := handOver(t, p, f, Admission{Client: "a", Rate: 1 << 20, Factor: 1, Burst: 32 << 20}, 0, 32<<20)
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("the stalled stream was not cut: %v, %+v", err, p.Stats())
	}
	if st := p.Stats(); st.Cut != 1 || st.Active != 0 || st.Reserved != 0 {
		t.Errorf("after the cut: %+v", st)
	}
}

// TestHandStop: Stop closes a handed stream's real connection, whether
// the stream waits for its next slice or for its full socket: the client
// reads a prefix of the body, then the end of the stream.
func TestHandStop(t *testing.T) {
	t.Parallel()
	f, data := tempFile(t, 32<<20)
	p := New(Options{Stall: time.Minute})
	defer p.Close()
	// 1 MiB/s after a 1 MiB burst: 31 s of body left.
	paced := handOver(t, p, f, Admission{Client: "a", Label: "paced", Rate: 1 << 20, Factor: 1, Burst: 1 << 20}, 0, int64(len(data)))
	// A burst of the whole file to a client that reads nothing yet: its
	// socket fills and the stream waits for it (for a minute's stall).
	full := handOver(t, p, f, Admission{Client: "b", Label: "full", Rate: 1 << 20, Factor: 1, Burst: 32 << 20}, 0, int64(len(data)))
	if _, err := io.ReadFull(paced, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	for _, st := range p.Streams() {
		if !p.Stop(st.ID) {
			t.Errorf("Stop(%q) of %s = false", st.ID, st.Label)
		}
	}
	// Before the clients read on: a client that reads would wake a
	// stream waiting for its socket, Stop or not. A stream Stop missed
	// would run for 31 s or a minute.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("stopped streams did not end: %v, %+v", err, p.Stats())
	}
	if st := p.Stats(); st.Stopped != 2 || st.Cut != 0 || st.Active != 0 || st.Reserved != 0 {
		t.Errorf("after Stop: %+v", st)
	}
	for i, c := range []net.Conn{paced, full} {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("stream %d after Stop: %v", i, err)
		}
		if i == 0 {
			got = append(make([]byte, 1<<20), got...)
			copy(got, data)
		}
		if len(got) >= len(data) || !bytes.Equal(got, data[:len(got)]) {
			t.Errorf("stream %d: %d bytes before the end, want a prefix of the %d-byte body", i, len(got), len(data))
		}
	}
}
