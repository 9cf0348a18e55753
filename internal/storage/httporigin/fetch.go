package httporigin

import (
	"context"
	"io"
	"io/fs"
	"net/http"
	"net/url"

	"mustserv/internal/storage"
)

// fetcher reads ranges of one version of one file.
type fetcher struct {
	b    *Backend
	name string
	url  *url.URL
	v    version
}

// fetch is the storage.FetchFunc of an opened file: a GET of bytes
// [off, off+n) that is only answered while the file is the version opened.
func (f *fetcher) fetch(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	if err := storage.CheckRangeRequest(off, n, f.v.size); err != nil {
		// Never a request: an empty file has no range to ask for.
		return nil, f.err(err)
	}
	h := http.Header{"Range": {storage.RangeHeader(off, n)}}
	if f.v.strongETag() {
		h.Set("If-Match", f.v.etag)
	} else if f.v.lastMod != "" {
		h.Set("If-Unmodified-Since", f.v.lastMod)
	}
	resp, err := f.b.do(ctx, http.MethodGet, f.url, h)
	if err != nil {
		return nil, f.err(err)
	}
	if err := f.check(resp, off, n); err != nil {
		resp.Body.Close()
		return nil, f.err(err)
	}
	return storage.ExactBody(resp.Body, n, f.err), nil
}

// err names the file in a fetch's error.
func (f *fetcher) err(err error) error {
	return &fs.PathError{Op: "read", Path: f.name, Err: err}
}

// check accepts an answer only if its body is exactly the asked range of
// the opened version.
func (f *fetcher) check(resp *http.Response, off, n int64) error {
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if err := storage.CheckContentRange(resp.Header.Get("Content-Range"), off, n, f.v.size); err != nil {
			return err
		}
	case http.StatusOK:
		// An origin that ignores Range sends the whole file: right only
		// if the whole file was asked for.
		if off != 0 || n != f.v.size {
			return unavailable("the origin answered 200 to a Range request")
		}
	case http.StatusPreconditionFailed:
		return storage.Changed("the origin answered %s", resp.Status)
	case http.StatusRequestedRangeNotSatisfiable:
		return storage.Changed("the origin answered %s: the file is shorter", resp.Status)
	default:
		return statusError(resp)
	}
	if err := storage.CheckContentLength(resp, n); err != nil {
		return err
	}
	if err := checkEncoding(resp); err != nil {
		return err
	}
	return f.checkVersion(resp)
}

// checkVersion accepts an answer whose ETag and Last-Modified are those
// the file was opened with (a validator the HEAD did not give is not
// compared).
func (f *fetcher) checkVersion(resp *http.Response) error {
	if etag := resp.Header.Get("ETag"); f.v.etag != "" && etag != f.v.etag {
		return storage.Changed("ETag %q, opened as %q", etag, f.v.etag)
	}
	if f.v.lastMod == "" {
		return nil
	}
	lm := resp.Header.Get("Last-Modified")
	if t, err := parseTime(lm); err != nil || !t.Equal(f.v.mtime) {
		return storage.Changed("Last-Modified %q, opened as %q", lm, f.v.lastMod)
	}
	return nil
}
