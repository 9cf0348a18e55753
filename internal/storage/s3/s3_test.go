package s3

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mustserv/internal/storage"
	"mustserv/internal/storage/storagetest"
)

// fixture is a small library: names with space, #, ?, %, +, & and
// unicode, an empty file, and one file larger than a read.
func fixture() map[string][]byte {
	big := make([]byte, 200<<10)
	for i := range big {
		big[i] = byte(i*7 + i>>8)
	}
	return map[string][]byte{
		"top.m4a":                               []byte("top of the tree"),
		"empty.ogg":                             {},
		"Music/Artist & Band/01 - Intro #1.mp3": []byte("intro bytes"),
		"Music/50% off?.flac":                   []byte("0123456789abcdef"),
		"Music/a+b (1).mp4":                     big,
		"Vidéos/日本 ü.mkv":                       []byte("matroska"),
	}
}

// infoOf is what a test compares of a FileInfo.
type infoOf struct {
	Name  string
	Size  int64
	Mode  fs.FileMode
	Time  time.Time
	IsDir bool
}

func describe(fi fs.FileInfo) infoOf {
	return infoOf{fi.Name(), fi.Size(), fi.Mode(), fi.ModTime(), fi.IsDir()}
}

// TestGateway runs the conformance suite over versitygw: below a prefix,
// at the root of a bucket, and with a range cache and a small read-ahead.
func TestGateway(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	t.Logf("versitygw answered %v after it was started", g.startup)
	cache, err := storage.NewCache(t.TempDir(), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, prefix string
		remote       storage.RemoteOptions
	}{
		{"prefix", "library/with space", storage.RemoteOptions{}},
		{"root", "", storage.RemoteOptions{}},
		{"cached", "cached", storage.RemoteOptions{Cache: cache, ReadAhead: 64 << 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bucket := g.newBucket(t)
			g.putAll(t, bucket, tt.prefix, storagetest.Files())
			storagetest.Run(t, g.backend(t, bucket, tt.prefix, Options{Remote: tt.remote}))
		})
	}
}

// TestGatewayVirtualHost reads the fixture in virtual-host style
// (bucket.s3.test), presigned URLs included.
func TestGatewayVirtualHost(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	bucket := g.newBucket(t)
	files := fixture()
	g.putAll(t, bucket, "lib", files)
	client := g.virtualClient()
	_, port, _ := strings.Cut(g.addr, ":")
	u := &url.URL{Scheme: "s3", Host: bucket, Path: "/lib", RawQuery: url.Values{
		"endpoint": {"http://" + virtualDomain + ":" + port}, "style": {"virtual"}}.Encode()}
	b, err := New(u, Options{AccessKey: testAccess, SecretKey: testSecret, Client: client,
		getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	checkTree(t, b, files)

	const name = "Vidéos/日本 ü.mkv"
	redirect, err := b.RedirectURL(t.Context(), name, 60)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(redirect, "http://"+bucket+"."+virtualDomain+":"+port+"/lib/") {
		t.Errorf("RedirectURL = %s, not virtual-host style", redirect)
	}
	resp, err := client.Get(redirect)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(body, files[name]) {
		t.Errorf("GET of the presigned URL: %s %q, %v; want 200 %q", resp.Status, body, err, files[name])
	}
}

// checkTree walks b and checks that it holds exactly files, that Stat
// and ReadDir describe every entry alike, and that every file reads back.
func checkTree(t *testing.T, b *Backend, files map[string][]byte) {
	t.Helper()
	ctx := t.Context()
	got := map[string]int64{}
	var walk func(dir string)
	walk = func(dir string) {
		entries, err := b.ReadDir(ctx, dir)
		if err != nil {
			t.Fatalf("ReadDir(%q): %v", dir, err)
		}
		for _, e := range entries {
			name := path.Join(dir, e.Name())
			fi, err := b.Stat(ctx, name)
			if err != nil {
				t.Fatalf("Stat(%q): %v", name, err)
			}
			if diff := cmp.Diff(describe(e), describe(fi)); diff != "" {
				t.Errorf("%s: ReadDir and Stat differ (-ReadDir +Stat)\n%s", name, diff)
			}
			if e.IsDir() {
				walk(name)
				continue
			}
			got[name] = e.Size()
			if e.ModTime().IsZero() || e.ModTime().Location() != time.UTC || e.ModTime().Nanosecond() != 0 {
				t.Errorf("%s: ModTime %v, want whole seconds in UTC", name, e.ModTime())
			}
		}
	}
	walk(".")
	want := map[string]int64{}
	for name, data := range files {
		want[name] = int64(len(data))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("files (-want +got)\n%s", diff)
	}
	for name, data := range files {
		checkRead(t, b, name, data)
	}
	if fi, err := b.Stat(ctx, "."); err != nil || !fi.IsDir() {
		t.Errorf("Stat(.) = %v, %v; want a folder", fi, err)
	}
}

// checkRead opens name and reads it whole and in part.
func checkRead(t *testing.T, b *Backend, name string, data []byte) {
	t.Helper()
	f, err := b.Open(t.Context(), name)
	if err != nil {
		t.Fatalf("Open(%q): %v", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() != int64(len(data)) || fi.Name() != path.Base(name) {
		t.Errorf("%s: File.Stat = %v, %v", name, fi, err)
	}
	all, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(all, data) {
		t.Errorf("%s: read %d bytes, %v; want the %d stored", name, len(all), err, len(data))
	}
	if len(data) < 10 {
		return
	}
	p := make([]byte, 5)
	off := int64(len(data) / 2)
	if n, err := f.ReadAt(p, off); n != 5 || err != nil || !bytes.Equal(p, data[off:off+5]) {
		t.Errorf("%s: ReadAt(5, %d) = %d %q, %v; want %q", name, off, n, p[:n], err, data[off:off+5])
	}
}

// TestGatewayNotExist asks for what is not there, or not a file, or not
// a folder.
func TestGatewayNotExist(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	bucket := g.newBucket(t)
	g.putAll(t, bucket, "lib", fixture())
	g.put(t, bucket, "library-sibling/x.mp3", []byte("not ours"))
	b := g.backend(t, bucket, "lib", Options{})
	ctx := t.Context()
	for _, name := range []string{"nope.mp3", "Music/nope", "Mus", "top.m4a/x"} {
		if _, err := b.Stat(ctx, name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(%q) = %v, want fs.ErrNotExist", name, err)
		}
	}
	for _, name := range []string{"Music", "nope.mp3", "."} {
		if _, err := b.Open(ctx, name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Open(%q) = %v, want fs.ErrNotExist", name, err)
		}
	}
	for _, name := range []string{"top.m4a", "nope"} {
		if _, err := b.ReadDir(ctx, name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadDir(%q) = %v, want fs.ErrNotExist", name, err)
		}
	}
	for _, name := range []string{"../lib", "/top.m4a", "Music/", ""} {
		if _, err := b.Stat(ctx, name); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Stat(%q) = %v, want fs.ErrInvalid", name, err)
		}
	}
	// The prefix "lib" is a folder: "library-sibling" is not below it.
	entries, err := b.ReadDir(ctx, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), "sibling") || e.Name() == "x.mp3" {
			t.Errorf("ReadDir(.) lists %q, outside the prefix", e.Name())
		}
	}

	missing := g.backend(t, "no-such-bucket", "", Options{})
	if _, err := missing.Stat(ctx, "."); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(.) of a missing bucket = %v, want fs.ErrNotExist", err)
	}
}

// countingTransport counts a backend's listings.
type countingTransport struct {
	lists atomic.Int64
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Query().Get("list-type") == "2" {
		c.lists.Add(1)
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestGatewayPages lists a folder of more keys than a page holds.
func TestGatewayPages(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	bucket := g.newBucket(t)
	files := map[string][]byte{}
	var want []string
	for _, name := range []string{"a.mp3", "b c.mp3", "d+e.mp3", "f#g.mp3", "h%i.mp3", "sub1/x.mp3", "sub2/x.mp3", "sub3/y/z.mp3"} {
		files[name] = []byte(name)
	}
	want = []string{"a.mp3", "b c.mp3", "d+e.mp3", "f#g.mp3", "h%i.mp3", "sub1/", "sub2/", "sub3/"}
	g.putAll(t, bucket, "p", files)
	ct := &countingTransport{}
	b := g.backend(t, bucket, "p", Options{Client: &http.Client{Transport: ct}, maxKeys: 2})
	entries, err := b.ReadDir(t.Context(), ".")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		if e.IsDir() {
			got = append(got, e.Name()+"/")
		} else {
			got = append(got, e.Name())
		}
	}
	if diff := cmp.Diff(want, got, cmpSorted()); diff != "" {
		t.Errorf("entries (-want +got)\n%s", diff)
	}
	if n := ct.lists.Load(); n < 4 {
		t.Errorf("%d listing requests for 8 entries 2 at a time", n)
	}
}

// cmpSorted compares string slices in any order.
func cmpSorted() cmp.Option {
	return cmp.Transformer("sort", func(s []string) []string {
		s = append([]string(nil), s...)
		for i := range s {
			for j := i + 1; j < len(s); j++ {
				if s[j] < s[i] {
					s[i], s[j] = s[j], s[i]
				}
			}
		}
		return s
	})
}

// TestGatewayRedirectURL fetches a presigned URL with a plain client,
// and sees a tampered or expired one refused.
func TestGatewayRedirectURL(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	bucket := g.newBucket(t)
	files := fixture()
	g.putAll(t, bucket, "lib", files)
	const name = "Music/50% off?.flac"
	data := files[name]

	get := func(u string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Range", "bytes=3-9")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}

	b := g.backend(t, bucket, "lib", Options{})
	u, err := b.RedirectURL(t.Context(), name, 60)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := get(u)
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[3:10]) {
		t.Errorf("GET of the presigned URL: %s %q, want 206 %q", resp.Status, body, data[3:10])
	}

	tampered := u[:len(u)-1] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", u[len(u)-1])+1)%16])
	if resp, _ := get(tampered); resp.StatusCode != http.StatusForbidden {
		t.Errorf("tampered signature: %s, want 403", resp.Status)
	}

	past := g.backend(t, bucket, "lib", Options{Now: func() time.Time { return time.Now().Add(-time.Hour) }})
	expired, err := past.RedirectURL(t.Context(), name, 60)
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := get(expired); resp.StatusCode != http.StatusForbidden {
		t.Errorf("expired URL: %s, want 403", resp.Status)
	}
}

// TestGatewayWrongSecret sees a wrong secret refused as
// storage.ErrUnavailable (the server's configuration is wrong: a logged
// 502, not a client's 403), in errors that name neither secret.
func TestGatewayWrongSecret(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	bucket := g.newBucket(t)
	g.putAll(t, bucket, "lib", fixture())
	const wrong = "wrong-secret-8d1f"
	b := g.backend(t, bucket, "lib", Options{AccessKey: testAccess, SecretKey: wrong})
	ctx := t.Context()
	var errs []error
	_, err := b.Stat(ctx, "top.m4a")
	errs = append(errs, err)
	_, err = b.ReadDir(ctx, "Music")
	errs = append(errs, err)
	_, err = b.Open(ctx, "top.m4a")
	errs = append(errs, err)
	for _, err := range errs {
		if !errors.Is(err, storage.ErrUnavailable) || errors.Is(err, fs.ErrPermission) {
			t.Errorf("%v, want storage.ErrUnavailable", err)
			continue
		}
		for _, secret := range []string{wrong, testSecret, "Signature=", "Credential="} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q contains %q", err, secret)
			}
		}
	}
	if !strings.Contains(errs[1].Error(), "SignatureDoesNotMatch") {
		t.Errorf("listing error %q lacks S3's code", errs[1])
	}
}

// TestGatewayChanged replaces an object under an open file: the next
// fetch fails with storage.ErrChanged, never mixing versions.
func TestGatewayChanged(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	bucket := g.newBucket(t)
	old := bytes.Repeat([]byte("old "), 16<<10)
	g.put(t, bucket, "lib/song.mp3", old)
	b := g.backend(t, bucket, "lib", Options{Remote: storage.RemoteOptions{ReadAhead: 1024}})
	f, err := b.Open(t.Context(), "song.mp3")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := make([]byte, 4)
	if _, err := f.ReadAt(p, 0); err != nil || string(p) != "old " {
		t.Fatalf("ReadAt before the change = %q, %v", p, err)
	}
	for _, replacement := range [][]byte{bytes.Repeat([]byte("new "), 16<<10), []byte("shorter")} {
		g.put(t, bucket, "lib/song.mp3", replacement)
		_, err = f.ReadAt(p, 40<<10)
		if !errors.Is(err, storage.ErrChanged) || !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("ReadAt after the change (%d bytes) = %v, want storage.ErrChanged and ErrUnavailable", len(replacement), err)
		}
	}
}
