package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"mustserv/internal/storage"
)

// ErrPrecondition is a conditional Put refused because the object is no
// longer the version the caller named (S3's 412 Precondition Failed):
// another writer got there first. Read the object again and retry.
var ErrPrecondition = errors.New("s3: the object changed (precondition failed)")

// Object is one object of a bucket, read and written whole: a small
// document that several machines share, such as the replicated accounts
// store. Unlike a Backend it writes, but only this one key, and only with
// the conditional PUTs of S3's optimistic concurrency (If-Match,
// If-None-Match: *). It is safe for concurrent use.
type Object struct {
	b   *Backend
	key string
	url *url.URL
}

// OpenObject returns the object named by the s3:// URL u, whose path is
// the object's key: s3://bucket/path/to/key?endpoint=&region=&style=, as
// New reads it (credentials and region alike). Options.Timeout bounds
// each request, its body included. OpenObject does no I/O.
func OpenObject(u *url.URL, opt Options) (*Object, error) {
	b, err := New(u, opt)
	if err != nil {
		return nil, err
	}
	if b.loc.prefix == "" {
		return nil, errors.New("s3: the URL names a bucket, not an object: s3://bucket/key")
	}
	return &Object{b: b, key: b.loc.prefix, url: b.loc.objectURL(b.loc.prefix)}, nil
}

// String names the bucket, key and endpoint, never a credential.
func (o *Object) String() string { return o.b.String() }

// Close closes the idle connections of the object's own client.
func (o *Object) Close() error { return o.b.Close() }

// Head returns the object's ETag (quoted, as S3 sends it). A missing
// object (or bucket) is an error wrapping fs.ErrNotExist.
func (o *Object) Head(ctx context.Context) (string, error) {
	v, err := o.b.head(ctx, o.key)
	if err != nil {
		return "", o.err("head", err)
	}
	if v.etag == "" {
		return "", o.err("head", unavailable("no ETag in the answer"))
	}
	return v.etag, nil
}

// Get reads the whole object and its ETag. An object larger than limit
// bytes is refused (an error wrapping storage.ErrUnavailable) without
// reading more than limit+1 of them; a missing one wraps fs.ErrNotExist.
func (o *Object) Get(ctx context.Context, limit int64) ([]byte, string, error) {
	ctx, cancel := context.WithTimeout(ctx, o.b.timeout)
	defer cancel()
	resp, err := o.b.do(ctx, http.MethodGet, o.url, nil)
	if err != nil {
		return nil, "", o.err("get", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", o.err("get", statusError(resp))
	}
	etag := resp.Header.Get("ETag")
	if etag == "" {
		return nil, "", o.err("get", unavailable("no ETag in the answer"))
	}
	if resp.ContentLength > limit {
		return nil, "", o.err("get", unavailable("%d bytes, more than the %d allowed", resp.ContentLength, limit))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	switch {
	case err != nil:
		return nil, "", o.err("get", classify(err))
	case int64(len(data)) > limit:
		return nil, "", o.err("get", unavailable("more than the %d bytes allowed", limit))
	case resp.ContentLength >= 0 && int64(len(data)) != resp.ContentLength:
		return nil, "", o.err("get", unavailable("%d bytes of the %d announced", len(data), resp.ContentLength))
	}
	return data, etag, nil
}

// Put replaces the object with data and returns its new ETag. ifMatch
// makes the write conditional: an ETag (from Head, Get or Put) writes
// only over that version (If-Match), "*" only where there is no object
// yet (If-None-Match: *), "" unconditionally. A write refused by its
// condition is an error wrapping ErrPrecondition; nothing was written.
//
// S3 answers 409 ConditionalRequestConflict when another conditional
// write of the key is under way, and 404 when an If-Match names an
// object that was deleted: both mean the same as a 412 to the caller
// (the object is not the version named) and wrap ErrPrecondition too.
func (o *Object) Put(ctx context.Context, data []byte, ifMatch string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, o.b.timeout)
	defer cancel()
	h := http.Header{"Content-Type": {"application/octet-stream"}}
	switch ifMatch {
	case "":
	case "*":
		h.Set("If-None-Match", "*")
	default:
		h.Set("If-Match", ifMatch)
	}
	req, err := storage.NewRequest(ctx, http.MethodPut, o.url, h)
	if err != nil {
		return "", o.err("put", err)
	}
	req.ContentLength = int64(len(data))
	req.Body = io.NopCloser(bytes.NewReader(data))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	// The payload's hash is signed: S3 refuses a body that is not the
	// one signed, so a write cannot be altered on its way.
	sum := sha256.Sum256(data)
	o.b.signer.sign(req, o.b.now(), hex.EncodeToString(sum[:]))
	resp, err := o.b.client.Do(req)
	if err != nil {
		return "", o.err("put", classify(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", o.err("put", putError(resp, ifMatch))
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	etag := resp.Header.Get("ETag")
	if etag == "" {
		return "", o.err("put", unavailable("written, but no ETag in the answer"))
	}
	return etag, nil
}

// putError is the error of a Put that S3 refused.
func putError(resp *http.Response, ifMatch string) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body = io.NopCloser(bytes.NewReader(body)) // for statusError
	precondition := false
	switch resp.StatusCode {
	case http.StatusPreconditionFailed, http.StatusConflict:
		precondition = true
	case http.StatusNotFound:
		// The object named by If-Match was deleted; a missing bucket
		// is not a precondition, but a wrong URL.
		var e s3Error
		xml.Unmarshal(body, &e)
		precondition = ifMatch != "" && ifMatch != "*" && e.Code != "NoSuchBucket"
	}
	if precondition {
		return fmt.Errorf("%w: %w", ErrPrecondition, statusError(resp))
	}
	return statusError(resp)
}

// err names the object in an error.
func (o *Object) err(op string, err error) error {
	return fmt.Errorf("s3: %s s3://%s/%s: %w", op, o.b.loc.bucket, o.key, err)
}
