package cover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"mustserv/internal/config"
	"mustserv/internal/index"
	"mustserv/internal/library"
	"mustserv/internal/probe"
)

// locations is a Locator that knows covers by ID.
type locations map[string]index.Cover

func (l locations) CoverOf(ctx context.Context, id string) (index.Cover, error) {
	if c, ok := l[id]; ok {
		return c, nil
	}
	return index.Cover{}, fmt.Errorf("item %s: %w", id, index.ErrNotFound)
}

// fixture is a library "Lib" over a temporary folder; its files are
// written by the test.
type fixture struct {
	root string
	tree *library.Tree
	locs locations
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	root := t.TempDir()
	tree, err := library.Open([]config.Library{{Name: "Lib", Path: root}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tree.Close() })
	return &fixture{root: root, tree: tree, locs: locations{}}
}

// write writes a file of the library and returns its bytes.
func (fx *fixture) write(t *testing.T, path string, b []byte) []byte {
	t.Helper()
	p := filepath.Join(fx.root, filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// folder writes a folder image and registers it as id's cover.
func (fx *fixture) folder(t *testing.T, id, path string, b []byte) []byte {
	t.Helper()
	fx.locs[id] = index.Cover{Library: "Lib", Path: path}
	return fx.write(t, path, b)
}

// embed writes a media file holding picture b at an offset, between other
// bytes, and registers it as id's cover.
func (fx *fixture) embed(t *testing.T, id, path, mime string, b []byte) {
	t.Helper()
	head := bytes.Repeat([]byte("ID3 and audio "), 100)
	file := append(append(append([]byte{}, head...), b...), bytes.Repeat([]byte{0xff, 0xfb}, 500)...)
	fx.write(t, path, file)
	fx.locs[id] = index.Cover{Library: "Lib", Path: path, MIME: mime, Offset: int64(len(head)), Size: int64(len(b))}
}

func (fx *fixture) cache(o Options) *Cache {
	o.Index, o.Tree = fx.locs, fx.tree
	return New(o)
}

// noise returns a w×h picture of random pixels: every one is different,
// so JPEG sizes differ and nothing compresses to nothing.
func noise(w, h int, seed uint64) image.Image {
	r := rand.New(rand.NewPCG(seed, 1))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(r.Uint32())
		if i%4 == 3 {
			img.Pix[i] = 0xff
		}
	}
	return img
}

func jpegOf(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func pngOf(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// dims decodes a thumbnail and returns its size.
func dims(t *testing.T, b []byte) image.Point {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("thumbnail is not a JPEG: %v", err)
	}
	return img.Bounds().Size()
}

func TestCover(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	landscape := fx.folder(t, "landscape", "Artist/Album/folder.jpg", jpegOf(t, noise(1000, 500, 1)))
	portrait := fx.folder(t, "portrait", "Artist/Album/Cover.PNG", pngOf(t, noise(300, 600, 2)))
	embedded := jpegOf(t, noise(200, 200, 3))
	fx.embed(t, "embedded", "Artist/Album/01 Song.mp3", "image/jpg", embedded)

	// A real file with a real embedded cover, located by the real prober.
	m4a, err := os.ReadFile(filepath.Join("..", "probe", "testdata", "mp4", "aac-tagged-cover.m4a"))
	if err != nil {
		t.Fatal(err)
	}
	fx.write(t, "tagged.m4a", m4a)
	rep, err := probe.Probe(t.Context(), bytes.NewReader(m4a), int64(len(m4a)), "tagged.m4a", probe.Options{})
	if err != nil || rep.Cover == nil {
		t.Fatalf("probe found no cover in the fixture: %v", err)
	}
	pc := rep.Cover
	fx.locs["m4a"] = index.Cover{Library: "Lib", Path: "tagged.m4a", MIME: pc.MIME, Offset: pc.Offset, Size: pc.Size}
	m4aCover := m4a[pc.Offset : pc.Offset+pc.Size]

	c := fx.cache(Options{Dir: t.TempDir()})
	tests := []struct {
		name     string
		id       string
		size     int
		wantMIME string
		want     []byte      // size 0: the original bytes
		wantDims image.Point // size > 0: the thumbnail's
	}{
		{name: "folder jpeg original", id: "landscape", want: landscape, wantMIME: "image/jpeg"},
		{name: "landscape fits the width", id: "landscape", size: 256, wantDims: image.Pt(256, 128), wantMIME: "image/jpeg"},
		{name: "odd size rounds the height", id: "landscape", size: 101, wantDims: image.Pt(101, 51), wantMIME: "image/jpeg"},
		{name: "exact size is kept", id: "landscape", size: 1000, wantDims: image.Pt(1000, 500), wantMIME: "image/jpeg"},
		{name: "never upscaled", id: "landscape", size: 4000, wantDims: image.Pt(1000, 500), wantMIME: "image/jpeg"},
		{name: "folder png original, type from the extension", id: "portrait", want: portrait, wantMIME: "image/png"},
		{name: "portrait fits the height", id: "portrait", size: 100, wantDims: image.Pt(50, 100), wantMIME: "image/jpeg"},
		{name: "tiny size", id: "portrait", size: 1, wantDims: image.Pt(1, 1), wantMIME: "image/jpeg"},
		{name: "embedded original, type normalised", id: "embedded", want: embedded, wantMIME: "image/jpeg"},
		{name: "embedded thumbnail", id: "embedded", size: 64, wantDims: image.Pt(64, 64), wantMIME: "image/jpeg"},
		{name: "m4a cover original", id: "m4a", want: m4aCover, wantMIME: "image/png"},
		{name: "m4a cover thumbnail", id: "m4a", size: 4, wantDims: image.Pt(4, 4), wantMIME: "image/jpeg"},
		{name: "m4a cover not upscaled", id: "m4a", size: 300, wantDims: image.Pt(8, 8), wantMIME: "image/jpeg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, mime, err := c.Cover(t.Context(), tt.id, tt.size)
			if err != nil {
				t.Fatal(err)
			}
			if mime != tt.wantMIME {
				t.Errorf("MIME = %q; want %q", mime, tt.wantMIME)
			}
			if tt.size == 0 {
				if !bytes.Equal(b, tt.want) {
					t.Errorf("got %d bytes; want the original %d", len(b), len(tt.want))
				}
				return
			}
			if d := dims(t, b); d != tt.wantDims {
				t.Errorf("thumbnail is %v; want %v", d, tt.wantDims)
			}
		})
	}
}

// TestThumbnailLooksRight checks the scaling through a real JPEG round
// trip: colours stay where they were and fine detail averages to grey.
func TestThumbnailLooksRight(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	// Left half red, right half blue, a 1-pixel checkerboard along the
	// bottom fifth (a scaler that samples instead of averaging turns it
	// black, white or moiré).
	img := image.NewRGBA(image.Rect(0, 0, 1000, 500))
	for y := range 500 {
		for x := range 1000 {
			switch {
			case y >= 400 && (x+y)%2 == 0:
				img.Set(x, y, color.White)
			case y >= 400:
				img.Set(x, y, color.Black)
			case x < 500:
				img.Set(x, y, color.RGBA{255, 0, 0, 255})
			default:
				img.Set(x, y, color.RGBA{0, 0, 255, 255})
			}
		}
	}
	fx.folder(t, "split", "split.png", pngOf(t, img))
	b, _, err := fx.cache(Options{}).Cover(t.Context(), "split", 250)
	if err != nil {
		t.Fatal(err)
	}
	th, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if got := th.Bounds().Size(); got != image.Pt(250, 125) {
		t.Fatalf("thumbnail is %v; want 250×125", got)
	}
	near := func(x, y int, want color.RGBA) {
		t.Helper()
		r, g, b, _ := th.At(x, y).RGBA()
		got := [3]int{int(r >> 8), int(g >> 8), int(b >> 8)}
		for i, w := range [3]int{int(want.R), int(want.G), int(want.B)} {
			if d := got[i] - w; d < -12 || d > 12 {
				t.Errorf("pixel (%d,%d) = %v; want about %v", x, y, got, want)
				return
			}
		}
	}
	near(20, 50, color.RGBA{255, 0, 0, 255})
	near(230, 50, color.RGBA{0, 0, 255, 255})
	near(60, 115, color.RGBA{128, 128, 128, 255})
	near(200, 115, color.RGBA{128, 128, 128, 255})
}

func TestScale(t *testing.T) {
	t.Parallel()
	// Exact values without a JPEG in between.
	checker := image.NewGray(image.Rect(0, 0, 999, 333))
	for i := range checker.Pix {
		if i%2 == 0 {
			checker.Pix[i] = 0xff
		}
	}
	clear := image.NewNRGBA(image.Rect(0, 0, 40, 40)) // fully transparent
	half := image.NewNRGBA(image.Rect(0, 0, 40, 40))
	for i := 0; i < len(half.Pix); i += 4 {
		copy(half.Pix[i:], []byte{0, 0, 0, 0x80}) // black at half opacity
	}
	offset := image.NewRGBA(image.Rect(-7, 13, 93, 63)) // bounds not at the origin
	for i := 0; i < len(offset.Pix); i += 4 {
		copy(offset.Pix[i:], []byte{10, 20, 30, 0xff})
	}
	tests := []struct {
		name     string
		src      image.Image
		size     int
		wantDims image.Point
		want     [3]uint8 // every pixel, within ±2
	}{
		{name: "checkerboard averages to grey", src: checker, size: 100, wantDims: image.Pt(100, 33), want: [3]uint8{128, 128, 128}},
		{name: "transparent is white", src: clear, size: 10, wantDims: image.Pt(10, 10), want: [3]uint8{255, 255, 255}},
		{name: "half-transparent black is grey", src: half, size: 7, wantDims: image.Pt(7, 7), want: [3]uint8{127, 127, 127}},
		{name: "bounds not at the origin", src: offset, size: 30, wantDims: image.Pt(30, 15), want: [3]uint8{10, 20, 30}},
		{name: "same size is a copy", src: offset, size: 100, wantDims: image.Pt(100, 50), want: [3]uint8{10, 20, 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dst := scale(tt.src, tt.size)
			if got := dst.Bounds().Size(); got != tt.wantDims {
				t.Fatalf("size %v; want %v", got, tt.wantDims)
			}
			for i := 0; i < len(dst.Pix); i += 4 {
				for c := range 3 {
					if d := int(dst.Pix[i+c]) - int(tt.want[c]); d < -2 || d > 2 {
						t.Fatalf("pixel %d = %v; want %v", i/4, dst.Pix[i:i+3], tt.want)
					}
				}
				if dst.Pix[i+3] != 0xff {
					t.Fatalf("pixel %d is not opaque", i/4)
				}
			}
		})
	}
}

func TestTaps(t *testing.T) {
	t.Parallel()
	for _, mn := range [][2]int{{1, 1}, {10, 10}, {1000, 256}, {1000, 3}, {7, 3}, {40000, 1}, {333, 100}} {
		m, n := mn[0], mn[1]
		covered := make([]float64, m)
		for i, ts := range taps(m, n) {
			sum := 0.0
			for _, tp := range ts {
				sum += float64(tp.w)
				covered[tp.src] += float64(tp.w) * float64(m) / float64(n)
			}
			if sum < 0.9999 || sum > 1.0001 {
				t.Errorf("taps(%d, %d)[%d] weigh %v in all; want 1", m, n, i, sum)
			}
		}
		// Every source pixel counts once in all, none twice.
		for k, w := range covered {
			if w < 0.999 || w > 1.001 {
				t.Errorf("taps(%d, %d): source pixel %d counts %v times; want 1", m, n, k, w)
				break
			}
		}
	}
}

func TestFit(t *testing.T) {
	t.Parallel()
	tests := []struct{ w, h, size, wantW, wantH int }{
		{1000, 500, 256, 256, 128},
		{500, 1000, 256, 128, 256},
		{1000, 1000, 256, 256, 256},
		{100, 50, 256, 100, 50},
		{10000, 1, 100, 100, 1},
		{1, 10000, 100, 1, 100},
		{3, 2, 2, 2, 1}, // 1.33 rounds to 1
		{640, 480, 500, 500, 375},
	}
	for _, tt := range tests {
		if w, h := fit(tt.w, tt.h, tt.size); w != tt.wantW || h != tt.wantH {
			t.Errorf("fit(%d, %d, %d) = %d×%d; want %d×%d", tt.w, tt.h, tt.size, w, h, tt.wantW, tt.wantH)
		}
	}
}

func TestMIME(t *testing.T) {
	t.Parallel()
	tests := []struct {
		loc  index.Cover
		want string
	}{
		{index.Cover{Path: "a/folder.jpg"}, "image/jpeg"},
		{index.Cover{Path: "a/Cover.JPEG"}, "image/jpeg"},
		{index.Cover{Path: "a/cover.png"}, "image/png"},
		{index.Cover{Path: "a/cover.webp"}, "image/webp"},
		{index.Cover{Path: "a.mp3", MIME: "image/jpeg", Size: 9}, "image/jpeg"},
		{index.Cover{Path: "a.mp3", MIME: "image/JPG", Size: 9}, "image/jpeg"},
		{index.Cover{Path: "a.mp3", MIME: " image/png ", Size: 9}, "image/png"},
		{index.Cover{Path: "a.mp3", MIME: "", Size: 9}, "application/octet-stream"},
		// A tagger's free text must not become a type that runs script.
		{index.Cover{Path: "a.mp3", MIME: "text/html", Size: 9}, "application/octet-stream"},
		{index.Cover{Path: "a.mp3", MIME: "image/svg+xml", Size: 9}, "application/octet-stream"},
	}
	for _, tt := range tests {
		if got := mimeOf(tt.loc); got != tt.want {
			t.Errorf("mimeOf(%+v) = %q; want %q", tt.loc, got, tt.want)
		}
	}
}

// cached lists the thumbnails in a cache folder and their total size.
func cached(t *testing.T, dir string) (names []string, total int64) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		fi, err := de.Info()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, de.Name())
		total += fi.Size()
	}
	return names, total
}

func TestCacheHit(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.folder(t, "a", "a/folder.jpg", jpegOf(t, noise(400, 300, 1)))
	dir := filepath.Join(t.TempDir(), "covers") // created on first use
	c := fx.cache(Options{Dir: dir})
	first, _, err := c.Cover(t.Context(), "a", 128)
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := c.Cover(t.Context(), "a", 128)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.decodes.Load(); got != 1 {
		t.Errorf("decoded %d times for two requests; want 1", got)
	}
	if !bytes.Equal(first, second) {
		t.Error("the cached thumbnail differs from the one made")
	}
	if names, _ := cached(t, dir); len(names) != 1 || !strings.HasSuffix(names[0], ".jpg") {
		t.Errorf("cache folder holds %q; want one thumbnail", names)
	}

	// Another size is another thumbnail.
	if _, _, err := c.Cover(t.Context(), "a", 64); err != nil {
		t.Fatal(err)
	}
	if got := c.decodes.Load(); got != 2 {
		t.Errorf("decoded %d times after a new size; want 2", got)
	}

	// A new process finds the thumbnails on disk.
	c2 := fx.cache(Options{Dir: dir})
	again, _, err := c2.Cover(t.Context(), "a", 128)
	if err != nil {
		t.Fatal(err)
	}
	if got := c2.decodes.Load(); got != 0 || !bytes.Equal(again, first) {
		t.Errorf("after a restart: %d decodes, same bytes %v; want 0 and true", got, bytes.Equal(again, first))
	}

	// A picture replaced (new modification time) is made again.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(fx.root, "a", "folder.jpg"), later, later); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c2.Cover(t.Context(), "a", 128); err != nil {
		t.Fatal(err)
	}
	if got := c2.decodes.Load(); got != 1 {
		t.Errorf("after the file changed: %d decodes; want 1", got)
	}

	// A thumbnail removed behind the cache's back is made again.
	names, _ := cached(t, dir)
	for _, n := range names {
		os.Remove(filepath.Join(dir, n))
	}
	if _, _, err := c2.Cover(t.Context(), "a", 128); err != nil {
		t.Fatal(err)
	}
	if got := c2.decodes.Load(); got != 2 {
		t.Errorf("after the cache files were removed: %d decodes; want 2", got)
	}
}

func TestEviction(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	ids := []string{"a", "b", "c", "d"}
	for i, id := range ids {
		fx.folder(t, id, id+"/folder.jpg", jpegOf(t, noise(300, 300, uint64(i))))
	}
	// The thumbnails' sizes, from a cache that keeps none.
	sizes := map[string]int64{}
	for _, id := range ids {
		b, _, err := fx.cache(Options{}).Cover(t.Context(), id, 100)
		if err != nil {
			t.Fatal(err)
		}
		sizes[id] = int64(len(b))
	}
	// Room for a, c and d: adding d after a is used again evicts b,
	// the least recently used, and nothing else.
	bound := sizes["a"] + sizes["c"] + sizes["d"]
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a thumbnail"), 0o644)
	os.WriteFile(filepath.Join(dir, tempPrefix+"123"), []byte("left by a crash"), 0o644)
	c := fx.cache(Options{Dir: dir, MaxBytes: bound})
	get := func(id string) {
		t.Helper()
		if _, _, err := c.Cover(t.Context(), id, 100); err != nil {
			t.Fatal(err)
		}
		names, total := cached(t, dir)
		if total-int64(len("not a thumbnail")) > bound {
			t.Errorf("after %s: the cache holds %d bytes (%q); bound %d", id, total, names, bound)
		}
	}
	for _, id := range []string{"a", "b", "c", "a", "d"} {
		get(id)
	}
	if got := c.decodes.Load(); got != 4 {
		t.Fatalf("%d decodes; want 4 (a, b, c, d)", got)
	}
	get("a")
	get("c")
	get("d")
	if got := c.decodes.Load(); got != 4 {
		t.Errorf("a, c and d were made again (%d decodes); want them cached", got)
	}
	get("b")
	if got := c.decodes.Load(); got != 5 {
		t.Errorf("b was not made again (%d decodes); want it evicted", got)
	}
	names, _ := cached(t, dir)
	if !strings.Contains(strings.Join(names, " "), "notes.txt") {
		t.Error("a file the cache did not write was removed")
	}
	for _, n := range names {
		if strings.HasPrefix(n, tempPrefix) {
			t.Errorf("temporary file %s left in the cache folder", n)
		}
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	good := jpegOf(t, noise(120, 80, 7))
	fx.folder(t, "garbage", "garbage/folder.jpg", []byte("this is not a picture at all"))
	fx.folder(t, "empty", "empty/folder.jpg", nil)
	fx.folder(t, "webp", "webp/cover.webp", []byte("RIFF\x1a\x00\x00\x00WEBPVP8 "))
	fx.embed(t, "embedded-garbage", "g.mp3", "image/jpeg", []byte("\xff\xd8\xff\xe0 and then nothing"))
	// 8000×6000 = 48 megapixels, claimed by the frame header of a small
	// JPEG: refused from the header, before any decoding.
	big := bytes.Clone(good)
	sof := bytes.Index(big, []byte{0xff, 0xc0})
	copy(big[sof+5:], []byte{6000 >> 8, 6000 & 0xff, 8000 >> 8, 8000 & 0xff})
	fx.folder(t, "megapixels", "big/folder.jpg", big)
	// A range over the byte limit, and a folder image over it (sparse).
	fx.write(t, "huge.mp3", good)
	fx.locs["huge-range"] = index.Cover{Library: "Lib", Path: "huge.mp3", MIME: "image/jpeg", Offset: 10, Size: maxBytes + 1}
	fx.locs["huge-file"] = index.Cover{Library: "Lib", Path: "huge/folder.jpg"}
	fx.write(t, "huge/folder.jpg", good)
	if err := os.Truncate(filepath.Join(fx.root, "huge", "folder.jpg"), maxBytes+1); err != nil {
		t.Fatal(err)
	}
	// The index is older than the file, which has shrunk.
	fx.locs["stale"] = index.Cover{Library: "Lib", Path: "huge.mp3", MIME: "image/jpeg", Offset: 100, Size: int64(len(good))}
	fx.locs["gone"] = index.Cover{Library: "Lib", Path: "gone/folder.jpg"}
	fx.locs["escape"] = index.Cover{Library: "Lib", Path: "../outside.jpg"}
	// Truncated JPEGs, cut anywhere.
	var truncated []string
	for _, n := range []int{3, 20, 100, len(good) / 4, len(good) / 2, len(good) * 7 / 8, len(good) - 2, len(good) - 1} {
		id := fmt.Sprintf("truncated-%d", n)
		fx.folder(t, id, id+"/folder.jpg", good[:n])
		truncated = append(truncated, id)
	}

	c := fx.cache(Options{Dir: t.TempDir()})
	tests := []struct {
		id   string
		size int
		want error
	}{
		{"unknown", 0, index.ErrNotFound},
		{"unknown", 64, index.ErrNotFound},
		{"gone", 0, fs.ErrNotExist},
		{"gone", 64, fs.ErrNotExist},
		{"escape", 64, library.ErrBadPath},
		{"garbage", 64, ErrBadImage},
		{"empty", 0, ErrBadImage},
		{"empty", 64, ErrBadImage},
		{"webp", 64, ErrBadImage},
		{"embedded-garbage", 64, ErrBadImage},
		{"megapixels", 64, ErrBadImage},
		{"huge-range", 0, ErrBadImage},
		{"huge-range", 64, ErrBadImage},
		{"huge-file", 0, ErrBadImage},
		{"huge-file", 64, ErrBadImage},
		{"stale", 0, ErrBadImage},
	}
	for _, id := range truncated {
		tests = append(tests, struct {
			id   string
			size int
			want error
		}{id, 64, ErrBadImage})
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s@%d", tt.id, tt.size), func(t *testing.T) {
			t.Parallel()
			b, _, err := c.Cover(t.Context(), tt.id, tt.size)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Cover = %d bytes, %v; want an error wrapping %q", len(b), err, tt.want)
			}
			// To a client, an unusable cover is a missing one (404).
			if tt.want == ErrBadImage && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error %q does not wrap fs.ErrNotExist", err)
			}
			if !strings.Contains(err.Error(), tt.id) {
				t.Errorf("error %q does not name the ID %s", err, tt.id)
			}
		})
	}
	t.Run("refused from the header", func(t *testing.T) {
		t.Parallel()
		c := fx.cache(Options{})
		if _, _, err := c.Cover(t.Context(), "megapixels", 64); !errors.Is(err, ErrBadImage) {
			t.Fatal(err)
		}
		if got := c.decodes.Load(); got != 0 {
			t.Errorf("%d decodes; want 0", got)
		}
	})
	t.Run("size 0 serves any format", func(t *testing.T) {
		t.Parallel()
		b, mime, err := c.Cover(t.Context(), "webp", 0)
		if err != nil || mime != "image/webp" || !bytes.HasPrefix(b, []byte("RIFF")) {
			t.Errorf("Cover = %q, %q, %v; want the WebP's bytes", b, mime, err)
		}
	})
}

// blocker is a beforeDecode hook that holds every decode until released.
type blocker struct{ release chan struct{} }

func (b blocker) hook() { <-b.release }

func TestConcurrentCallersDecodeOnce(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.folder(t, "a", "a/folder.jpg", jpegOf(t, noise(500, 400, 1)))
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		c := fx.cache(Options{Dir: dir})
		bl := blocker{make(chan struct{})}
		c.beforeDecode = bl.hook
		const n = 8
		got := make([][]byte, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				b, _, err := c.Cover(context.Background(), "a", 100)
				if err != nil {
					t.Error(err)
				}
				got[i] = b
			})
		}
		synctest.Wait() // every caller is waiting for the one decode
		close(bl.release)
		wg.Wait()
		if d := c.decodes.Load(); d != 1 {
			t.Errorf("%d callers decoded %d times; want once", n, d)
		}
		for i := range got {
			if diff := cmp.Diff(got[0], got[i]); diff != "" || got[i] == nil {
				t.Errorf("caller %d got other bytes than caller 0", i)
			}
		}
	})
}

func TestCancel(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	for _, id := range []string{"a", "b", "c"} {
		fx.folder(t, id, id+"/folder.jpg", jpegOf(t, noise(60, 60, uint64(id[0]))))
	}
	synctest.Test(t, func(t *testing.T) {
		c := fx.cache(Options{})
		bl := blocker{make(chan struct{})}
		c.beforeDecode = bl.hook
		var wg sync.WaitGroup
		call := func(ctx context.Context, id string, want error) {
			wg.Go(func() {
				_, _, err := c.Cover(ctx, id, 32)
				if !errors.Is(err, want) {
					t.Errorf("Cover(%s) = %v; want %v", id, err, want)
				}
			})
		}
		// a and b take both decode tokens; c waits for one.
		call(context.Background(), "a", nil)
		ctxB, cancelB := context.WithCancel(context.Background())
		call(ctxB, "b", context.Canceled)
		call(context.Background(), "b", nil)
		synctest.Wait()
		ctxC, cancelC := context.WithCancel(context.Background())
		call(ctxC, "c", context.Canceled)
		synctest.Wait()

		// One of b's two callers leaves: the other still gets it.
		cancelB()
		// c's only caller leaves: its work is dropped before decoding.
		cancelC()
		synctest.Wait()
		close(bl.release)
		wg.Wait()
		if d := c.decodes.Load(); d != 2 {
			t.Errorf("%d decodes; want 2 (a and b, not the abandoned c)", d)
		}
		// Asked again, c is made afresh.
		if _, _, err := c.Cover(context.Background(), "c", 32); err != nil {
			t.Fatal(err)
		}
	})
}
