package httporigin

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestNew(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url, want string // want "" for an error
	}{
		{"http://nas.local/media", "http://nas.local/media/"},
		{"https://nas.local/media/", "https://nas.local/media/"},
		{"HTTP://nas.local", "http://nas.local/"},
		{"http://nas.local/my%20media", "http://nas.local/my%20media/"},
		{"http://user:hunter2@nas.local/media", "http://nas.local/media/"},
		{"ftp://nas.local/media/", ""},
		{"http:///media/", ""},
		{"http://nas.local/media/?sort=name", ""},
		{"http://nas.local/media/#top", ""},
		{"nas.local/media/", ""},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		b, err := New(u, Options{})
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("New(%q) = %s, want an error", tc.url, b)
		case tc.want != "" && err != nil:
			t.Errorf("New(%q): %v", tc.url, err)
		case tc.want != "" && b.String() != tc.want:
			t.Errorf("New(%q).String() = %q, want %q", tc.url, b.String(), tc.want)
		}
	}
	if b, err := New(&url.URL{Scheme: "http", Host: "h", Path: "/"}, Options{}); err != nil || !b.Remote() {
		t.Errorf("New: %v, Remote() = %v; want a remote backend", err, err == nil && b.Remote())
	}
}

// Credentials go out as headers on every request and appear in no error
// and not in String.
func TestCredentials(t *testing.T) {
	t.Parallel()
	const (
		password = "s3cr3t-p@ss"
		token    = "mk_0123456789abcdef"
	)
	for _, tc := range []struct {
		name     string
		userinfo string
		token    string
		want     string // the Authorization header
	}{
		{"basic", "alice:" + url.QueryEscape(password) + "@", "", "Basic " + basic("alice", password)},
		{"token", "", token, "Bearer " + token},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			auths := map[string]bool{}
			other := httptest.NewServer(http.NotFoundHandler())
			t.Cleanup(other.Close)
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				auths[r.Header.Get("Authorization")] = true
				mu.Unlock()
				switch r.URL.Path {
				case "/media/":
					w.Header().Set("Content-Type", "text/html")
					fmt.Fprint(w, `<a href="a.mp3">a</a>`)
				case "/media/a.mp3":
					serveContent(w, r)
				case "/media/garbage/":
					w.Header().Set("Content-Type", "application/json")
					fmt.Fprint(w, `{`)
				case "/media/away.mp3":
					http.Redirect(w, r, other.URL+"/?"+password+token, http.StatusFound)
				case "/media/slow.mp3":
					<-r.Context().Done()
				case "/media/broken.mp3":
					w.Header().Set("ETag", etag)
					w.Header().Set("Content-Length", "36")
					if r.Method == http.MethodGet {
						w.WriteHeader(http.StatusOK) // to a range request
					}
				default:
					http.Error(w, password+token, http.StatusInternalServerError)
				}
			}))
			t.Cleanup(ts.Close)
			raw := strings.Replace(ts.URL, "://", "://"+tc.userinfo, 1) + "/media/"
			b := newBackend(t, raw, Options{Token: tc.token, Timeout: time.Second}) // slow.mp3 waits it out
			ctx := t.Context()
			if _, err := b.ReadDir(ctx, "."); err != nil {
				t.Fatal(err)
			}
			var errs []error
			keep := func(_ any, err error) { errs = append(errs, err) }
			keep(b.Stat(ctx, "missing.mp3"))
			keep(b.ReadDir(ctx, "garbage"))
			keep(b.Stat(ctx, "away.mp3"))
			keep(b.Stat(ctx, "slow.mp3"))
			f, err := b.Open(ctx, "broken.mp3")
			if err != nil {
				t.Fatal(err)
			}
			keep(f.ReadAt(make([]byte, 4), 4))
			f.Close()
			for _, err := range errs {
				if err == nil {
					t.Error("a request that should fail did not")
					continue
				}
				if s := err.Error(); strings.Contains(s, password) || strings.Contains(s, token) || strings.Contains(s, "alice") {
					t.Errorf("error %q holds a credential", s)
				}
			}
			if s := b.String(); strings.Contains(s, password) || strings.Contains(s, "alice") {
				t.Errorf("String() = %q holds a credential", s)
			}
			mu.Lock()
			defer mu.Unlock()
			if diff := cmp.Diff(map[string]bool{tc.want: true}, auths); diff != "" {
				t.Errorf("Authorization headers (-want +got):\n%s", diff)
			}
		})
	}
	u, _ := url.Parse("http://alice:" + password + "@nas.local/media/")
	if _, err := New(u, Options{Token: token}); err == nil || strings.Contains(err.Error(), password) || strings.Contains(err.Error(), token) {
		t.Errorf("New with userinfo and token: %v; want an error without either", err)
	}
	u, _ = url.Parse("ftp://alice:" + password + "@nas.local/media/")
	if _, err := New(u, Options{}); err == nil || strings.Contains(err.Error(), password) {
		t.Errorf("New(ftp://...): %v; want an error without the password", err)
	}
}

// basic is the credentials of a Basic Authorization header (RFC 7617).
func basic(user, pass string) string {
	r, _ := http.NewRequest(http.MethodGet, "http://h/", nil)
	r.SetBasicAuth(user, pass)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}
