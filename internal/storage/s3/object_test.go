package s3

import (
	"bytes"
	"errors"
	"io/fs"
	"net/url"
	"strings"
	"testing"

	"mustserv/internal/storage"
)

// object returns the Object bucket/key on the gateway.
func (g *gateway) object(t *testing.T, bucket, key string) *Object {
	t.Helper()
	u := &url.URL{Scheme: "s3", Host: bucket, Path: "/" + key,
		RawQuery: url.Values{"endpoint": {g.Endpoint}, "region": {"us-east-1"}}.Encode()}
	o, err := OpenObject(u, Options{AccessKey: testAccess, SecretKey: testSecret,
		getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

// TestObjectConditionalPut checks, against versitygw, the optimistic
// concurrency the replicated accounts store is built on: a create-only
// PUT (If-None-Match: *) and a PUT over a named version (If-Match) are
// refused with 412 once another writer has been first.
func TestObjectConditionalPut(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	o := g.object(t, g.newBucket(t), "cluster/state.db")
	ctx := t.Context()

	if _, err := o.Head(ctx); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Head of a missing object: %v, want fs.ErrNotExist", err)
	}
	if _, _, err := o.Get(ctx, 1<<20); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Get of a missing object: %v, want fs.ErrNotExist", err)
	}
	if _, err := o.Put(ctx, []byte("x"), `"0123456789abcdef0123456789abcdef"`); !errors.Is(err, ErrPrecondition) {
		t.Errorf("Put If-Match of a missing object: %v, want ErrPrecondition", err)
	}

	e1, err := o.Put(ctx, []byte("first"), "*")
	if err != nil {
		t.Fatalf("create-only Put of a new object: %v", err)
	}
	if _, err := o.Put(ctx, []byte("second creator"), "*"); !errors.Is(err, ErrPrecondition) {
		t.Fatalf("create-only Put over an object: %v, want ErrPrecondition", err)
	}
	e2, err := o.Put(ctx, []byte("second"), e1)
	if err != nil {
		t.Fatalf("Put If-Match of the current ETag: %v", err)
	}
	if e2 == e1 {
		t.Errorf("the ETag did not change with the data: %s", e2)
	}
	if _, err := o.Put(ctx, []byte("lost update"), e1); !errors.Is(err, ErrPrecondition) {
		t.Fatalf("Put If-Match of a replaced ETag: %v, want ErrPrecondition", err)
	}

	head, err := o.Head(ctx)
	if err != nil || head != e2 {
		t.Errorf("Head = %s, %v; want %s", head, err, e2)
	}
	data, etag, err := o.Get(ctx, 1<<20)
	if err != nil || string(data) != "second" || etag != e2 {
		t.Errorf("Get = %q, %s, %v; want %q, %s", data, etag, err, "second", e2)
	}
	if _, err := o.Put(ctx, []byte("unconditional"), ""); err != nil {
		t.Errorf("unconditional Put: %v", err)
	}
}

// TestObjectGetLimit refuses an object larger than the limit.
func TestObjectGetLimit(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	o := g.object(t, g.newBucket(t), "big")
	data := bytes.Repeat([]byte("0123456789"), 1000)
	if _, err := o.Put(t.Context(), data, "*"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := o.Get(t.Context(), 9999); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Get over the limit: %v, want ErrUnavailable", err)
	}
	got, _, err := o.Get(t.Context(), 10000)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("Get at the limit: %d bytes, %v", len(got), err)
	}
}

// TestObjectErrors: a URL without a key is refused, and an error never
// holds the secret key.
func TestObjectErrors(t *testing.T) {
	t.Parallel()
	u, _ := url.Parse("s3://bucket/?endpoint=http://127.0.0.1:1")
	if _, err := OpenObject(u, Options{AccessKey: "a", SecretKey: "b"}); err == nil {
		t.Error("OpenObject of a bucket: no error")
	}
	g := startGateway(t)
	bucket := g.newBucket(t)
	u = &url.URL{Scheme: "s3", Host: bucket, Path: "/k",
		RawQuery: url.Values{"endpoint": {g.Endpoint}, "region": {"us-east-1"}}.Encode()}
	o, err := OpenObject(u, Options{AccessKey: testAccess, SecretKey: "wrong-" + testSecret})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	_, err = o.Put(t.Context(), []byte("x"), "*")
	if err == nil || errors.Is(err, ErrPrecondition) || strings.Contains(err.Error(), testSecret) {
		t.Errorf("Put with a wrong secret: %v", err)
	}
	missing := g.object(t, "no-such-bucket-here", "k")
	if _, err := missing.Put(t.Context(), []byte("x"), `"abc"`); err == nil || errors.Is(err, ErrPrecondition) {
		t.Errorf("Put If-Match into a missing bucket: %v, want an error that is not ErrPrecondition", err)
	}
}
