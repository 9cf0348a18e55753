package cover

import (
	"bytes"
	"image/jpeg"
	"testing"
)

// BenchmarkThumbnail makes a 300×300 thumbnail of a 3000×3000 JPEG (a
// large cover scan): decode, scale and encode, no cache.
func BenchmarkThumbnail(b *testing.B) {
	src := jpegOf(b, noise(3000, 3000, 1))
	c := New(Options{})
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		img, err := c.decode(src)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := encode(scale(img, 300)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScale is the scaling alone, from a decoded JPEG (YCbCr).
func BenchmarkScale(b *testing.B) {
	img, err := jpeg.Decode(bytes.NewReader(jpegOf(b, noise(3000, 3000, 1))))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		scale(img, 300)
	}
}
