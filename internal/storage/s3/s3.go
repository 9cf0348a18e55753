// Package s3 is the storage backend of a library kept in an S3-compatible
// bucket (AWS S3, MinIO, versitygw, Garage, R2...), named by a URL such as
// s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1.
// Folders are listed with ListObjectsV2 ("/" is the delimiter), files
// described with HEAD and read with signed Range GETs through
// storage.OpenRemote, which does the read-ahead and caching; RedirectURL
// presigns a GET so that a client can fetch the bytes from the bucket
// itself.
//
// Object (object.go) is one object read and written whole with
// conditional PUTs (If-Match, If-None-Match: *): where nodes on several
// machines keep their shared accounts.
//
// It speaks AWS Signature Version 4 itself (sign.go) and needs no SDK.
// A library's Backend only reads: it never writes, deletes or creates
// anything in the bucket; only an Object writes, and only its own key.
// It knows no credentials but a static key pair (with an
// optional session token) from its Options or the usual environment —
// no profiles, instance roles or SSO. The secret key, the Authorization
// header and presigned signatures never appear in an error or in String.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"time"

	"mustserv/internal/storage"
)

var (
	_ storage.Backend    = (*Backend)(nil)
	_ storage.Redirector = (*Backend)(nil)
)

// Options configure a Backend. The zero value is sane.
type Options struct {
	// AccessKey, SecretKey and SessionToken are the credentials; with
	// neither key set they come from AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
	AccessKey, SecretKey, SessionToken string
	// Client sends the requests; nil means a client of the backend's own
	// (dial 5 s, response header 15 s). Either way redirects are not
	// followed.
	Client *http.Client
	// Remote tunes the files Open returns (storage.OpenRemote).
	Remote storage.RemoteOptions
	// Timeout bounds each metadata request (a HEAD or a page of a
	// listing, its body included); 0 means 15 s.
	Timeout time.Duration
	// Now is the clock requests are signed with; nil means time.Now.
	Now func() time.Time

	// getenv reads the environment (tests replace it); nil means os.Getenv.
	getenv func(string) string
	// maxKeys is the max-keys of a listing's pages; 0 means S3's 1000.
	maxKeys int
}

// Backend is a storage.Backend over the objects below a prefix of a
// bucket. It is safe for concurrent use.
type Backend struct {
	loc     location
	signer  signer
	client  *http.Client
	own     bool // client was made here (Close closes its connections)
	remote  storage.RemoteOptions
	timeout time.Duration
	now     func() time.Time
	maxKeys int
}

// New returns the backend of the s3:// URL u. Its region is the URL's
// region parameter, else AWS_REGION, else AWS_DEFAULT_REGION, else
// us-east-1. New does no I/O: a wrong bucket or key shows in the first
// Stat.
func New(u *url.URL, opt Options) (*Backend, error) {
	if u == nil {
		return nil, errors.New("s3: no URL")
	}
	getenv := opt.getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	loc, err := parseLocation(u, getenv)
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	sg, err := credentials(opt, getenv)
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	sg.region = loc.region
	b := &Backend{loc: loc, signer: sg, client: newClient(opt.Client), own: opt.Client == nil,
		remote: opt.Remote, timeout: opt.Timeout, now: opt.Now, maxKeys: opt.maxKeys}
	if b.timeout <= 0 {
		b.timeout = 15 * time.Second
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.maxKeys <= 0 {
		b.maxKeys = 1000
	}
	return b, nil
}

// credentials is the signer of opt's key pair, or of the environment's
// when opt has neither key.
func credentials(opt Options, getenv func(string) string) (signer, error) {
	s := signer{access: opt.AccessKey, secret: opt.SecretKey, token: opt.SessionToken}
	from := "the options"
	if s.access == "" && s.secret == "" {
		s = signer{access: getenv("AWS_ACCESS_KEY_ID"), secret: getenv("AWS_SECRET_ACCESS_KEY"),
			token: getenv("AWS_SESSION_TOKEN")}
		from = "the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
	}
	if s.access == "" || s.secret == "" {
		return signer{}, fmt.Errorf("no access key or no secret key in %s", from)
	}
	return s, nil
}

// String names the bucket, prefix and endpoint, never a credential.
func (b *Backend) String() string {
	s := "s3://" + b.loc.bucket + "/" + b.loc.prefix
	return s + " (" + b.loc.endpoint.String() + ")"
}

// Remote reports true: the files are fetched over the network.
func (b *Backend) Remote() bool { return true }

// Close closes the idle connections of the backend's own client.
func (b *Backend) Close() error {
	if b.own {
		b.client.CloseIdleConnections()
	}
	return nil
}

// Stat describes the file or folder name: a file by a HEAD of its key, a
// folder (which S3 does not have) by the keys below it; the root is a
// folder as long as the bucket can be listed.
func (b *Backend) Stat(ctx context.Context, name string) (fs.FileInfo, error) {
	if err := storage.ValidName("stat", name); err != nil {
		return nil, err
	}
	fi, err := b.stat(ctx, name)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return fi, nil
}

// stat is Stat after the name's check, with unwrapped errors.
func (b *Backend) stat(ctx context.Context, name string) (fs.FileInfo, error) {
	if name != "." {
		v, err := b.head(ctx, b.loc.key(name))
		if err == nil {
			return v.info(path.Base(name)), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	p, err := b.listPage(ctx, b.loc.dirKey(name), "", 1)
	switch {
	case err != nil:
		return nil, err
	case p.count == 0 && name != ".":
		return nil, fmt.Errorf("%w: no such key or folder", fs.ErrNotExist)
	}
	return storage.FileInfo{Base: path.Base(name), Dir: true}, nil
}

// ReadDir lists the folder name with ListObjectsV2, every page of it.
// Keys below it that are not one valid path segment are left out. A
// folder without keys (a file, a name that is not there) is
// fs.ErrNotExist, except the root.
func (b *Backend) ReadDir(ctx context.Context, name string) ([]fs.FileInfo, error) {
	if err := storage.ValidName("readdir", name); err != nil {
		return nil, err
	}
	entries, keys, err := b.list(ctx, b.loc.dirKey(name))
	if err == nil && keys == 0 && name != "." {
		err = fmt.Errorf("%w: no keys below it", fs.ErrNotExist)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	infos := make([]fs.FileInfo, len(entries))
	for i, e := range entries {
		infos[i] = e
	}
	return infos, nil
}

// Open opens the file name: a HEAD learns its size and ETag, and reads
// are Range GETs with If-Match that fail with storage.ErrChanged once the
// object is no longer the one opened.
func (b *Backend) Open(ctx context.Context, name string) (storage.File, error) {
	if err := storage.ValidName("open", name); err != nil {
		return nil, err
	}
	if name == "." {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w: a folder", fs.ErrNotExist)}
	}
	key := b.loc.key(name)
	v, err := b.head(ctx, key)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	f := &fetcher{b: b, name: name, url: b.loc.objectURL(key), v: v}
	o := storage.Object{Info: v.info(path.Base(name)), Key: b.cacheKey(key, v), Fetch: f.fetch}
	return storage.OpenRemote(ctx, o, b.remote), nil
}

// cacheKey identifies this version of the object key for the range cache.
func (b *Backend) cacheKey(key string, v version) string {
	return fmt.Sprintf("s3 %s %q %q %q %d %d", b.loc.endpoint, b.loc.bucket, key, v.etag, v.size, v.mtime.Unix())
}

// RedirectURL returns a presigned GET of the file name, valid for
// ttlSeconds (at most seven days, SigV4's limit), that any client can
// use with a Range header. It does not ask S3 whether the object exists:
// a caller has already found it with Stat or Open.
func (b *Backend) RedirectURL(ctx context.Context, name string, ttlSeconds int) (string, error) {
	if err := storage.ValidName("redirect", name); err != nil {
		return "", err
	}
	if name == "." {
		return "", &fs.PathError{Op: "redirect", Path: name, Err: fmt.Errorf("%w: a folder", fs.ErrNotExist)}
	}
	if ttlSeconds <= 0 {
		return "", &fs.PathError{Op: "redirect", Path: name, Err: fmt.Errorf("%w: ttl %d s", fs.ErrInvalid, ttlSeconds)}
	}
	u := b.signer.presign(b.loc.objectURL(b.loc.key(name)), b.now(), min(ttlSeconds, maxExpires))
	return u.String(), nil
}

// version is what a HEAD tells of an object.
type version struct {
	size  int64
	mtime time.Time // UTC, whole seconds
	etag  string
}

func (v version) info(name string) storage.FileInfo {
	return storage.FileInfo{Base: name, Bytes: v.size, MTime: v.mtime}
}

// head describes the object key.
func (b *Backend) head(ctx context.Context, key string) (version, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	resp, err := b.do(ctx, http.MethodHead, b.loc.objectURL(key), nil)
	if err != nil {
		return version{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return version{}, statusError(resp)
	}
	return parseVersion(resp.Header)
}

// parseVersion reads an object's size, time and ETag from the headers
// of a HEAD or GET.
func parseVersion(h http.Header) (version, error) {
	size, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
	if err != nil || size < 0 {
		return version{}, unavailable("Content-Length %q", h.Get("Content-Length"))
	}
	lm := h.Get("Last-Modified")
	t, err := http.ParseTime(lm)
	if err != nil {
		return version{}, unavailable("Last-Modified %q", lm)
	}
	return version{size: size, mtime: t.UTC(), etag: h.Get("ETag")}, nil
}
