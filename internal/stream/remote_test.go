package stream

import (
	"bytes"
	"crypto/sha256"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"mustserv/internal/pace"
	"mustserv/internal/storage"
)

// memFile is a storage.File that is not an *os.File, as a remote
// backend's: the server must copy it, never try sendfile or the loop.
type memFile struct {
	*bytes.Reader
	fi fs.FileInfo
}

func (m memFile) Close() error               { return nil }
func (m memFile) Stat() (fs.FileInfo, error) { return m.fi, nil }

// TestServeNotAnOSFile: a file that is not an *os.File is served with
// the same bytes, ranges and validators as a local one, unpaced and
// paced, on a connection the pacer could take over (it must not: the
// loop sends with sendfile) and on one it could not.
func TestServeNotAnOSFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := content(9, 3<<20)
	writeFile(t, dir, "film.mkv", data, fixtureTime())
	pacer := pace.New(pace.Options{})
	t.Cleanup(pacer.Close)
	s := NewPaced(10*time.Second, Pacing{Pacer: pacer})
	pol := Policy{Enabled: true, Factor: 1, Burst: time.Second, UnknownRate: 400e6}
	asMem := func(f *os.File, fi fs.FileInfo) storage.File {
		b, err := io.ReadAll(f)
		if err != nil {
			t.Error(err)
		}
		return memFile{bytes.NewReader(b), fi}
	}
	handlers := map[string]func(http.ResponseWriter, *http.Request, *os.File, fs.FileInfo){
		"plain": func(w http.ResponseWriter, r *http.Request, f *os.File, fi fs.FileInfo) {
			s.Serve(w, r, asMem(f, fi), fi)
		},
		"paced": func(w http.ResponseWriter, r *http.Request, f *os.File, fi fs.FileInfo) {
			s.ServePaced(w, r, asMem(f, fi), fi, Who{Client: "test", Policy: pol})
		},
	}
	fi, err := os.Stat(dir + "/film.mkv")
	if err != nil {
		t.Fatal(err)
	}
	client := newClient(t)
	for name, h := range handlers {
		srv := httptest.NewUnstartedServer(fileHandler(t, dir, h))
		srv.Config.ConnContext = ConnContext // the loop could take the connection
		srv.Start()
		t.Cleanup(srv.Close)
		for _, tc := range []struct {
			rng        string
			start, end int
			code       int
		}{
			{"", 0, len(data), http.StatusOK},
			{"bytes=0-", 0, len(data), http.StatusPartialContent},
			{"bytes=1000000-", 1000000, len(data), http.StatusPartialContent},
			{"bytes=5-9", 5, 10, http.StatusPartialContent},
			{"bytes=-100", len(data) - 100, len(data), http.StatusPartialContent},
		} {
			hdr := map[string]string{}
			if tc.rng != "" {
				hdr["Range"] = tc.rng
			}
			resp := send(t, client, http.MethodGet, srv.URL+"/film.mkv", hdr)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != tc.code {
				t.Errorf("%s %q: %s, %v; want %d", name, tc.rng, resp.Status, err, tc.code)
				continue
			}
			if sha256.Sum256(body) != sha256.Sum256(data[tc.start:tc.end]) {
				t.Errorf("%s %q: %d bytes, not the file's %d-%d", name, tc.rng, len(body), tc.start, tc.end)
			}
			if resp.Header.Get("Etag") != ETag(fi) || resp.Header.Get("Connection") == "close" {
				t.Errorf("%s %q: ETag %q, Connection %q; want %q and a connection kept (not handed to the loop)",
					name, tc.rng, resp.Header.Get("Etag"), resp.Header.Get("Connection"), ETag(fi))
			}
		}
	}
	if st := pacer.Stats(); st.Admitted == 0 || st.Handed != 0 {
		t.Errorf("pacer: %d admitted, %d handed; want the paced GETs admitted and none handed", st.Admitted, st.Handed)
	}
}
