package cover

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
)

// decode decodes a JPEG, PNG or GIF picture, chosen by its magic bytes
// rather than through image.Decode's process-wide format registry, after
// checking its size from the header alone.
func (c *Cache) decode(b []byte) (image.Image, error) {
	var config func(io.Reader) (image.Config, error)
	var full func(io.Reader) (image.Image, error)
	switch {
	case bytes.HasPrefix(b, []byte("\xff\xd8\xff")):
		config, full = jpeg.DecodeConfig, jpeg.Decode
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		config, full = png.DecodeConfig, png.Decode
	case bytes.HasPrefix(b, []byte("GIF8")):
		config, full = gif.DecodeConfig, gif.Decode // the first frame
	default:
		return nil, fmt.Errorf("%w: not a JPEG, PNG or GIF", ErrBadImage)
	}
	cfg, err := config(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadImage, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return nil, fmt.Errorf("%w: %d×%d pixels, over the limit of %d megapixels", ErrBadImage, cfg.Width, cfg.Height, maxPixels/1_000_000)
	}
	if c.beforeDecode != nil {
		c.beforeDecode()
	}
	c.decodes.Add(1)
	img, err := full(bytes.NewReader(b))
	if err != nil {
		// The decoder's error (often io.ErrUnexpectedEOF) is detail, not
		// something a caller should match on.
		return nil, fmt.Errorf("%w: %v", ErrBadImage, err)
	}
	return img, nil
}

func encode(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: jpegQuality}); err != nil {
		return nil, fmt.Errorf("encode thumbnail: %w", err)
	}
	return buf.Bytes(), nil
}

// fit returns the size of a w×h picture scaled to fit a size×size square,
// keeping its aspect ratio: never larger than it is, never 0 wide or high.
func fit(w, h, size int) (int, int) {
	if w <= size && h <= size {
		return w, h
	}
	if w >= h {
		return size, max(1, int((int64(h)*int64(size)+int64(w)/2)/int64(w)))
	}
	return max(1, int((int64(w)*int64(size)+int64(h)/2)/int64(h))), size
}

// scale shrinks src to fit size×size by area averaging: each thumbnail
// pixel is the mean of the source area it covers, partly covered pixels
// weighted by how much of them it covers. For shrinking that is as good as
// a cubic filter (it cannot alias or ring) and needs no dependency; see
// docs/decisions/0011-cover-thumbnails.md. Averages are of the sRGB values,
// as most thumbnailers do, and transparency is composited onto white, since
// a JPEG has none.
//
// It works one source row at a time, so beyond the decoded picture it
// needs memory for a row and the thumbnail only.
func scale(src image.Image, size int) *image.RGBA {
	b := src.Bounds()
	dw, dh := fit(b.Dx(), b.Dy(), size)
	xt, yt := taps(b.Dx(), dw), taps(b.Dy(), dh)
	row := image.NewRGBA(image.Rect(0, 0, b.Dx(), 1)) // a source row, premultiplied
	hrow := make([]float32, dw*4)                     // that row averaged across
	acc := make([]float32, dw*4)                      // a thumbnail row being summed
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	last := -1
	for y, ts := range yt {
		clear(acc)
		for _, t := range ts {
			// A source row on the border of two thumbnail rows is
			// converted once, for both.
			if t.src != last {
				// draw.Draw has fast paths from the decoders' own
				// types (YCbCr, Gray, NRGBA, ...) into RGBA.
				draw.Draw(row, row.Rect, src, image.Pt(b.Min.X, b.Min.Y+t.src), draw.Src)
				hsample(hrow, row.Pix, xt)
				last = t.src
			}
			for i, v := range hrow {
				acc[i] += t.w * v
			}
		}
		p := dst.Pix[y*dst.Stride : y*dst.Stride+dw*4]
		for x := 0; x < dw; x++ {
			// Premultiplied colour over white is c + (255 - alpha).
			a := acc[x*4+3]
			p[x*4+0] = to8(acc[x*4+0] + 255 - a)
			p[x*4+1] = to8(acc[x*4+1] + 255 - a)
			p[x*4+2] = to8(acc[x*4+2] + 255 - a)
			p[x*4+3] = 0xff
		}
	}
	return dst
}

// tap is a source pixel's share of a thumbnail pixel.
type tap struct {
	src int
	w   float32
}

// taps returns, for each of n thumbnail pixels along an axis of m ≥ n
// source pixels, the source pixels it covers and their weights (summing
// to 1).
func taps(m, n int) [][]tap {
	s := float64(m) / float64(n)
	out := make([][]tap, n)
	for i := range out {
		lo, hi := float64(i)*s, float64(i+1)*s
		for k := int(lo); k < m && float64(k) < hi; k++ {
			if w := min(hi, float64(k+1)) - max(lo, float64(k)); w > 1e-9 {
				out[i] = append(out[i], tap{k, float32(w / s)})
			}
		}
	}
	return out
}

// hsample averages one row of RGBA pixels across into out.
func hsample(out []float32, pix []uint8, xt [][]tap) {
	for x, ts := range xt {
		var r, g, b, a float32
		for _, t := range ts {
			p := pix[t.src*4 : t.src*4+4 : t.src*4+4]
			r += t.w * float32(p[0])
			g += t.w * float32(p[1])
			b += t.w * float32(p[2])
			a += t.w * float32(p[3])
		}
		out[x*4+0], out[x*4+1], out[x*4+2], out[x*4+3] = r, g, b, a
	}
}

func to8(v float32) uint8 {
	return uint8(min(255, max(0, v+0.5)))
}
