package probe

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Test code shared by the parsers' tests.

// probeFixture probes a fixture with opts.
func probeFixture(t *testing.T, path string, opts Options) (*Report, error) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return Probe(context.Background(), bytes.NewReader(b), int64(len(b)), path, opts)
}

// checkReport probes a fixture and compares the whole report with want.
func checkReport(t *testing.T, path string, want *Report) {
	t.Helper()
	got, err := probeFixture(t, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
}

// randomBytes returns n bytes from a PCG seeded with seed1, seed2: the
// same "random file" in every run.
func randomBytes(seed1, seed2 uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed1, seed2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// checkCoverPNG checks that the cover a fixture reports is exactly the
// bytes of a whole PNG in the file.
func checkCoverPNG(t *testing.T, path string) {
	t.Helper()
	rep, err := probeFixture(t, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	c := rep.Cover
	if c == nil || c.Offset < 0 || c.Size < 0 || c.Offset+c.Size > int64(len(b)) {
		t.Fatalf("cover %+v in a file of %d bytes", c, len(b))
	}
	png := b[c.Offset : c.Offset+c.Size]
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || !bytes.HasSuffix(png, []byte("IEND\xaeB`\x82")) {
		t.Errorf("cover bytes % x … are not a whole PNG", png[:min(len(png), 8)])
	}
}

// probeAllocs probes r and returns the bytes the probe allocated. The
// figure counts the whole process: callers must not run in parallel.
func probeAllocs(r io.ReaderAt, size int64, name string) (*Report, error, uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rep, err := Probe(context.Background(), r, size, name, Options{})
	runtime.ReadMemStats(&after)
	return rep, err, after.TotalAlloc - before.TotalAlloc
}

// readCounter counts the bytes a probe reads.
type readCounter struct {
	r io.ReaderAt
	n int64
}

func (c *readCounter) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n += int64(n)
	return n, err
}

// zeroTail is a file of size bytes: head, then zeros. It lets a test claim
// gigabytes without having them.
type zeroTail struct {
	head []byte
	size int64
}

func (z zeroTail) ReadAt(p []byte, off int64) (int, error) {
	if off >= z.size {
		return 0, io.EOF
	}
	n := copy(p, z.head[min(off, int64(len(z.head))):])
	clear(p[n:])
	if rest := z.size - off; int64(len(p)) > rest {
		return int(rest), io.EOF
	}
	return len(p), nil
}

// sizeOnly reports whether rep is a size-only success (see Probe): no
// duration, no bitrates, method unknown, no error.
func sizeOnly(rep *Report) bool {
	return rep != nil && rep.Error == "" && rep.Duration == 0 && rep.BitrateAvg == 0 && rep.BitratePeak == 0 && rep.PeakMethod == Unknown
}
