// Package cover provides the cover art of items and albums for the web UI:
// a picture's original bytes, or a JPEG thumbnail that fits a square, made
// once and then kept in a size-bounded cache on disk.
//
// It reads pictures where the index says they are (a byte range of a media
// file, or a folder image) and only through the library tree, so it never
// opens a file outside a library. It decodes JPEG, PNG and GIF (the first
// frame). It does not decode WebP or any other format (their original bytes
// are still served at size 0), does not apply EXIF orientation, and knows
// nothing of HTTP: ETags and caching headers are the web layer's.
package cover

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync/atomic"

	"mustserv/internal/index"
	"mustserv/internal/library"
	"mustserv/internal/media"
)

// Limits on the work one picture may cost. A 40-megapixel picture decodes
// to 60–320 MB (YCbCr JPEG to 16-bit RGBA PNG); no cover needs more.
const (
	maxPixels     = 40_000_000
	maxBytes      = 32 << 20 // of a picture's encoded bytes
	maxDecodes    = 2        // pictures decoded at once
	jpegQuality   = 85
	defaultBound  = 256 << 20 // Options.MaxBytes when 0
	thumbnailMIME = "image/jpeg"
)

// ErrBadImage is returned (wrapped) for a picture that is corrupt, in a
// format this package does not decode, or over the size limits. To a
// client such a cover does not exist: it wraps fs.ErrNotExist (a 404,
// not a server error).
var ErrBadImage = fmt.Errorf("bad or unsupported picture (%w)", fs.ErrNotExist)

// Locator says where the cover of an item or album is; *index.Index is one.
type Locator interface {
	CoverOf(ctx context.Context, id string) (index.Cover, error)
}

// Options configure a Cache. Index and Tree are required; the rest may be
// left zero.
type Options struct {
	Index Locator
	Tree  *library.Tree
	// Dir holds the thumbnails. "" keeps none: every thumbnail is made
	// again. One Cache per Dir: the bound is kept by this process alone.
	Dir string
	// MaxBytes bounds the thumbnails kept in Dir; 0 means 256 MiB.
	MaxBytes int64
	// Logger reports cache failures that do not fail a request (a full
	// disk); nil discards them.
	Logger *slog.Logger
}

// Cache serves covers. It is safe for concurrent use.
type Cache struct {
	index  Locator
	tree   *library.Tree
	disk   *disk // nil without a Dir
	flight flight
	sem    chan struct{} // one token per decode in progress

	decodes      atomic.Int64 // pictures decoded so far, for tests
	beforeDecode func()       // test hook, called holding a decode token
}

// New returns a Cache. It touches the disk only when a thumbnail is first
// asked for.
func New(o Options) *Cache {
	if o.MaxBytes <= 0 {
		o.MaxBytes = defaultBound
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Cache{index: o.Index, tree: o.Tree, sem: make(chan struct{}, maxDecodes)}
	if o.Dir != "" {
		c.disk = newDisk(o.Dir, o.MaxBytes, o.Logger)
	}
	return c
}

// Cover returns the cover of an item or album (by public ID). Size 0 gives
// the picture's original bytes and content type; size > 0 a JPEG scaled
// down to fit size×size, keeping the aspect ratio (never scaled up).
//
// No cover is an error wrapping index.ErrNotFound (fs.ErrNotExist), as is a
// picture file that is gone; a corrupt, unsupported or oversized picture
// wraps ErrBadImage. The bytes returned may be shared with other callers:
// they must not be modified.
func (c *Cache) Cover(ctx context.Context, id string, size int) ([]byte, string, error) {
	loc, err := c.index.CoverOf(ctx, id)
	if err != nil {
		return nil, "", fmt.Errorf("cover of %s: %w", id, err)
	}
	vpath := loc.Library + "/" + loc.Path
	if size <= 0 {
		b, err := c.read(ctx, vpath, loc)
		if err != nil {
			return nil, "", fmt.Errorf("cover of %s: %w", id, err)
		}
		return b, mimeOf(loc), nil
	}
	// The key needs the file's size and modification time, so that a
	// retagged or replaced file gets a new thumbnail. Open, not Stat:
	// Open refuses what is not a regular file and has a fast path.
	f, fi, err := c.tree.Open(ctx, vpath)
	if err != nil {
		return nil, "", fmt.Errorf("cover of %s: %w", id, err)
	}
	f.Close()
	key := keyOf(loc, fi, size)
	if b, ok := c.disk.get(key); ok {
		return b, thumbnailMIME, nil
	}
	b, err := c.flight.do(ctx, key, func(ctx context.Context) ([]byte, error) {
		return c.thumbnail(ctx, vpath, loc, key, size)
	})
	if err != nil {
		return nil, "", fmt.Errorf("cover of %s: %w", id, err)
	}
	return b, thumbnailMIME, nil
}

// thumbnail makes, stores and returns the thumbnail of the picture at loc.
func (c *Cache) thumbnail(ctx context.Context, vpath string, loc index.Cover, key string, size int) ([]byte, error) {
	// Another flight may have stored it since the caller looked.
	if b, ok := c.disk.get(key); ok {
		return b, nil
	}
	// The token is taken before reading, so that waiting requests do not
	// hold their pictures' bytes in memory either.
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.sem }()
	raw, err := c.read(ctx, vpath, loc)
	if err != nil {
		return nil, err
	}
	img, err := c.decode(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", vpath, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := encode(scale(img, size))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", vpath, err)
	}
	c.disk.put(key, b)
	return b, nil
}

// read returns the picture's bytes: its range of the file, or the whole
// folder image.
func (c *Cache) read(ctx context.Context, vpath string, loc index.Cover) ([]byte, error) {
	f, fi, err := c.tree.Open(ctx, vpath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	off, n := loc.Offset, loc.Size
	if n == 0 {
		off, n = 0, fi.Size()
	}
	switch {
	case n > maxBytes:
		return nil, fmt.Errorf("%s: %w: %d bytes, over the limit of %d MiB", vpath, ErrBadImage, n, maxBytes>>20)
	case n <= 0 || off < 0 || off > fi.Size()-n:
		// The index is older than the file, or the file is empty.
		return nil, fmt.Errorf("%s: %w: no picture at bytes %d+%d of %d", vpath, ErrBadImage, off, n, fi.Size())
	}
	b := make([]byte, n)
	if got, err := f.ReadAt(b, off); got < len(b) {
		return nil, fmt.Errorf("read %s: %w", vpath, err)
	}
	return b, nil
}

// mimeOf returns the content type of a picture's original bytes. A tag's
// type is free text written by any tagger: only image types a browser shows
// inertly pass (never text/html or image/svg+xml, which could run script
// from our origin).
func mimeOf(loc index.Cover) string {
	if loc.Size == 0 {
		_, t := media.TypeOf(loc.Path)
		return t
	}
	switch m := strings.ToLower(strings.TrimSpace(loc.MIME)); m {
	case "image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp":
		return m
	case "image/jpg", "image/pjpeg": // common misspellings in tags
		return "image/jpeg"
	}
	return "application/octet-stream"
}

// keyOf names a thumbnail by what identifies its picture's bytes and the
// size asked for. NUL cannot occur in library paths, so the fields cannot
// run into each other; "v1" changes when the thumbnails would.
func keyOf(loc index.Cover, fi fs.FileInfo, size int) string {
	h := sha256.New()
	fmt.Fprintf(h, "v1\x00%s\x00%s\x00%d\x00%d\x00%d\x00%d\x00%d",
		loc.Library, loc.Path, loc.Offset, loc.Size, fi.ModTime().UnixNano(), fi.Size(), size)
	return hex.EncodeToString(h.Sum(nil))
}
