package origins_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"testing"

	"mustserv/internal/storage"
	"mustserv/internal/storage/s3"
	"mustserv/internal/storage/storagetest"
	"mustserv/internal/testenv/origins"
)

// The files Put writes are S3 objects as versitygw's own PUT makes them:
// the s3 backend passes the conformance suite over them, below a prefix.
func TestVersityPutIsAnObject(t *testing.T) {
	t.Parallel()
	v := origins.StartVersity(t)
	bucket := v.Bucket(t, "media")
	v.PutFiles(t, bucket, "lib/rary", storagetest.Files())
	storagetest.Run(t, newS3(t, v, v.URL(bucket, "lib/rary")))
}

// Put gives each version of an object its own ETag: a replacement of the
// same size within the same second (the same Last-Modified) is seen as a
// change by an open file.
func TestVersityPutChangesETag(t *testing.T) {
	t.Parallel()
	v := origins.StartVersity(t)
	bucket := v.Bucket(t, "etags")
	v.Put(t, bucket, "a.mp3", bytes.Repeat([]byte("a"), 100<<10))
	f, err := newS3(t, v, v.URL(bucket, "")).Open(t.Context(), "a.mp3")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v.Put(t, bucket, "a.mp3", bytes.Repeat([]byte("b"), 100<<10))
	if _, err := f.ReadAt(make([]byte, 4), 0); !errors.Is(err, storage.ErrChanged) {
		t.Errorf("ReadAt after a replacement: %v, want storage.ErrChanged", err)
	}
}

// newS3 is an s3 backend of raw on v, with v's keys.
func newS3(t *testing.T, v *origins.Versity, raw string) *s3.Backend {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s3.New(u, s3.Options{AccessKey: v.AccessKey, SecretKey: v.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// StartNginx lists folders as JSON below /json/ and serves the files
// below both /json/ and /html/.
func TestNginx(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	origins.WriteTree(t, root, map[string][]byte{"sub dir/é.mp3": []byte("bytes")})
	base := origins.StartNginx(t, root)

	var list []struct{ Name, Type string }
	if err := json.Unmarshal(fetch(t, base+"/json/sub%20dir/"), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "é.mp3" || list[0].Type != "file" {
		t.Errorf("JSON index of sub dir = %+v, want the one file é.mp3", list)
	}
	if got := fetch(t, base+"/html/sub%20dir/%C3%A9.mp3"); string(got) != "bytes" {
		t.Errorf("the file below /html/ = %q, want %q", got, "bytes")
	}
}

// fetch GETs url and returns the body of its 200 answer.
func fetch(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	return body
}
