package s3

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mustserv/internal/storage"
)

// What a real S3 server does not do on demand (fail, hang, garble, cut
// short) is played by a fake.

// fakeBackend returns a backend whose endpoint is h.
func fakeBackend(t *testing.T, h http.Handler, opt Options) *Backend {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return backendAt(t, srv.URL, opt)
}

// backendAt returns a backend of bucket "b" at the endpoint.
func backendAt(t *testing.T, endpoint string, opt Options) *Backend {
	t.Helper()
	u := &url.URL{Scheme: "s3", Host: "b", Path: "/lib", RawQuery: url.Values{"endpoint": {endpoint}}.Encode()}
	opt.AccessKey, opt.SecretKey = "key", "fake-secret-value"
	opt.getenv = func(string) string { return "" }
	b, err := New(u, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	xmlError := func(status int, code string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			io.WriteString(w, "<Error><Code>"+code+"</Code><Message>the message</Message>"+
				"<StringToSign>AWS4-HMAC-SHA256 leak</StringToSign></Error>")
		}
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    error
	}{
		{"500", xmlError(500, "InternalError"), storage.ErrUnavailable},
		{"503 SlowDown", xmlError(503, "SlowDown"), storage.ErrUnavailable},
		{"404 NoSuchBucket", xmlError(404, "NoSuchBucket"), fs.ErrNotExist},
		{"400 NoSuchKey", xmlError(400, "NoSuchKey"), fs.ErrNotExist},
		// The server's own credentials refused: its configuration is
		// wrong (a logged 502), not the client's request.
		{"403 AccessDenied", xmlError(403, "AccessDenied"), storage.ErrUnavailable},
		{"403 SignatureDoesNotMatch", xmlError(403, "SignatureDoesNotMatch"), storage.ErrUnavailable},
		{"301 to another region", xmlError(301, "PermanentRedirect"), storage.ErrUnavailable},
		{"garbled listing", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "<html><body>captive portal</body></html>")
		}, storage.ErrUnavailable},
		{"listing without LastModified", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "<ListBucketResult><Contents><Key>lib/x.mp3</Key><Size>1</Size></Contents></ListBucketResult>")
		}, storage.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := fakeBackend(t, tt.handler, Options{})
			_, err := b.ReadDir(t.Context(), "Music")
			if !errors.Is(err, tt.want) {
				t.Fatalf("ReadDir = %v, want %v", err, tt.want)
			}
			for _, leak := range []string{"fake-secret-value", "AWS4-HMAC-SHA256", "Signature="} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error %q contains %q", err, leak)
				}
			}
		})
	}
}

func TestWrongRegion(t *testing.T) {
	t.Parallel()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Amz-Bucket-Region", "eu-north-1")
		w.WriteHeader(http.StatusMovedPermanently)
	})
	b := fakeBackend(t, h, Options{})
	_, err := b.Stat(t.Context(), "x.mp3")
	if !errors.Is(err, storage.ErrUnavailable) || !strings.Contains(err.Error(), "region eu-north-1") {
		t.Errorf("Stat = %v, want storage.ErrUnavailable naming the bucket's region", err)
	}
}

func TestTransportErrors(t *testing.T) {
	t.Parallel()
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		b := backendAt(t, "http://"+addr, Options{})
		if _, err := b.Stat(t.Context(), "x.mp3"); !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("Stat = %v, want storage.ErrUnavailable", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		hang := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		b := fakeBackend(t, hang, Options{Timeout: 50 * time.Millisecond})
		if _, err := b.Stat(t.Context(), "x.mp3"); !errors.Is(err, storage.ErrTimeout) {
			t.Errorf("Stat = %v, want storage.ErrTimeout", err)
		}
		if _, err := b.ReadDir(t.Context(), "."); !errors.Is(err, storage.ErrTimeout) {
			t.Errorf("ReadDir = %v, want storage.ErrTimeout", err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		t.Parallel()
		hang := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		b := fakeBackend(t, hang, Options{})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := b.Stat(ctx, "x.mp3"); !errors.Is(err, context.Canceled) {
			t.Errorf("Stat = %v, want context.Canceled", err)
		}
	})
}

// object is a fake S3 object and how the fake answers its GETs.
type object struct {
	data []byte
	etag string
	// get, if not nil, answers a GET instead of the right answer.
	get func(w http.ResponseWriter, r *http.Request)
}

func (o *object) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("ETag", o.etag)
	w.Header().Set("Last-Modified", "Tue, 24 Nov 2026 17:58:21 GMT")
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Length", "16")
		return
	}
	if r.Header.Get("If-Match") != o.etag {
		w.WriteHeader(http.StatusPreconditionFailed)
		return
	}
	o.get(w, r)
}

// fetchAll reads bytes [off, off+n) of name as an opened file's fetches
// do (the remote file above them chooses its own ranges and retries).
func fetchAll(t *testing.T, b *Backend, name string, off, n int64) ([]byte, error) {
	t.Helper()
	key := b.loc.key(name)
	v, err := b.head(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	f := &fetcher{b: b, name: name, url: b.loc.objectURL(key), v: v}
	rc, err := f.fetch(t.Context(), off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestFetchChecks(t *testing.T) {
	t.Parallel()
	data := []byte("0123456789abcdef")
	answer := func(status int, contentRange, etag, body string) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			if etag != "" {
				w.Header().Set("ETag", etag)
			}
			w.Header().Set("Content-Range", contentRange)
			w.WriteHeader(status)
			io.WriteString(w, body)
		}
	}
	tests := []struct {
		name        string
		get         func(http.ResponseWriter, *http.Request)
		wantChanged bool
		wantEOF     bool
	}{
		{name: "200 to a range", get: answer(200, "", "", string(data))},
		{name: "another range", get: answer(206, "bytes 5-8/16", "", "5678")},
		{name: "no Content-Range", get: answer(206, "", "", "4567")},
		{name: "another size", get: answer(206, "bytes 4-7/17", "", "4567"), wantChanged: true},
		{name: "another ETag", get: answer(206, "bytes 4-7/16", `"v2"`, "4567"), wantChanged: true},
		{name: "412", get: answer(412, "", "", ""), wantChanged: true},
		{name: "500", get: answer(500, "", "", "")},
		{name: "cut short", get: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", "bytes 4-7/16")
			w.Header().Set("Content-Length", "4")
			w.WriteHeader(http.StatusPartialContent)
			io.WriteString(w, "45")
		}, wantEOF: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := fakeBackend(t, &object{data: data, etag: `"v1"`, get: tt.get}, Options{})
			_, err := fetchAll(t, b, "x.mp3", 4, 4)
			if !errors.Is(err, storage.ErrUnavailable) {
				t.Fatalf("fetch = %v, want storage.ErrUnavailable", err)
			}
			if errors.Is(err, storage.ErrChanged) != tt.wantChanged {
				t.Errorf("fetch = %v: storage.ErrChanged %v, want %v", err, !tt.wantChanged, tt.wantChanged)
			}
			if errors.Is(err, io.ErrUnexpectedEOF) != tt.wantEOF {
				t.Errorf("fetch = %v: io.ErrUnexpectedEOF %v, want %v", err, !tt.wantEOF, tt.wantEOF)
			}
		})
	}
}

func TestFetchRightAnswer(t *testing.T) {
	t.Parallel()
	var gets atomic.Int32
	o := &object{data: []byte("0123456789abcdef"), etag: `"v1"`}
	o.get = func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		if r.Header.Get("Range") != "bytes=4-7" || !strings.Contains(r.Header.Get("Authorization"), "range") {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Range", "bytes 4-7/16")
		w.WriteHeader(http.StatusPartialContent)
		io.WriteString(w, "4567")
	}
	b := fakeBackend(t, o, Options{})
	if got, err := fetchAll(t, b, "x.mp3", 4, 4); err != nil || string(got) != "4567" {
		t.Errorf("fetch = %q, %v; want \"4567\"", got, err)
	}
	if n := gets.Load(); n != 1 {
		t.Errorf("%d GETs", n)
	}
}

func TestEmptyObjectNeverFetched(t *testing.T) {
	t.Parallel()
	var fetched atomic.Bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"e"`)
		w.Header().Set("Last-Modified", "Tue, 24 Nov 2026 17:58:21 GMT")
		w.Header().Set("Content-Length", "0")
		if r.Method == http.MethodGet {
			fetched.Store(true)
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		}
	})
	b := fakeBackend(t, h, Options{})
	f, err := b.Open(t.Context(), "empty.mp3")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if data, err := io.ReadAll(f); err != nil || len(data) != 0 {
		t.Errorf("ReadAll = %q, %v", data, err)
	}
	if fetched.Load() {
		t.Error("an empty object was fetched")
	}
	// The fetcher itself refuses a range outside the object.
	fe := &fetcher{b: b, name: "empty.mp3", v: version{etag: `"e"`}}
	if _, err := fe.fetch(t.Context(), 0, 1); err == nil {
		t.Error("fetch of a byte of an empty object: no error")
	}
}
