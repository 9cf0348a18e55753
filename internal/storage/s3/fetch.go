package s3

import (
	"context"
	"io"
	"io/fs"
	"net/http"
	"net/url"

	"mustserv/internal/storage"
)

// fetcher reads ranges of one version of one object.
type fetcher struct {
	b    *Backend
	name string
	url  *url.URL
	v    version
}

// fetch is the storage.FetchFunc of an opened file: a signed GET of bytes
// [off, off+n) that S3 answers only while the object has the ETag it was
// opened with.
func (f *fetcher) fetch(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	if err := storage.CheckRangeRequest(off, n, f.v.size); err != nil {
		// Never a request: an empty object has no range to ask for.
		return nil, f.err(err)
	}
	h := http.Header{"Range": {storage.RangeHeader(off, n)}}
	if f.v.etag != "" {
		h.Set("If-Match", f.v.etag)
	} else {
		h.Set("If-Unmodified-Since", f.v.mtime.Format(http.TimeFormat))
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
	case http.StatusPreconditionFailed:
		return storage.Changed("S3 answered %s", resp.Status)
	case http.StatusRequestedRangeNotSatisfiable:
		return storage.Changed("S3 answered %s: the object is shorter", resp.Status)
	default:
		return statusError(resp)
	}
	if err := storage.CheckContentRange(resp.Header.Get("Content-Range"), off, n, f.v.size); err != nil {
		return err
	}
	if err := storage.CheckContentLength(resp, n); err != nil {
		return err
	}
	if etag := resp.Header.Get("ETag"); etag != f.v.etag {
		return storage.Changed("ETag %q, opened as %q", etag, f.v.etag)
	}
	return nil
}
