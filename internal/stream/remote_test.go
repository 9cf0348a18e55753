package stream

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
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

// failingFile is a remote-like file whose reads fail, recording where
// they were asked.
type failingFile struct {
	memFile
	asked []int64
}

func (f *failingFile) ReadAt(p []byte, off int64) (int, error) {
	f.asked = append(f.asked, off)
	return 0, storage.ErrUnavailable
}

// TestFirstBytes: a GET of a remote file reads the first byte it will
// send (the Range's start) and reports the storage's error, so the front
// end can answer 502; a HEAD, a request that may be answered 304, and a
// local file read nothing.
func TestFirstBytes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "a.mkv", content(1, 1000), fixtureTime())
	local, err := os.Open(dir + "/a.mkv")
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	fi, err := local.Stat()
	if err != nil {
		t.Fatal(err)
	}
	req := func(method string, header ...string) *http.Request {
		r := httptest.NewRequest(method, "/a.mkv", nil)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		return r
	}
	for _, tc := range []struct {
		name    string
		r       *http.Request
		wantErr bool
		asked   []int64
	}{
		{"GET", req(http.MethodGet), true, []int64{0}},
		{"GET from 600", req(http.MethodGet, "Range", "bytes=600-"), true, []int64{600}},
		{"HEAD", req(http.MethodHead), false, nil},
		{"maybe 304", req(http.MethodGet, "If-None-Match", `"x"`), false, nil},
	} {
		f := &failingFile{memFile: memFile{bytes.NewReader(nil), fi}}
		err := FirstBytes(tc.r, f, fi)
		if (err != nil) != tc.wantErr || (err != nil && !errors.Is(err, storage.ErrUnavailable)) {
			t.Errorf("%s: %v, want an error %v", tc.name, err, tc.wantErr)
		}
		if !slices.Equal(f.asked, tc.asked) {
			t.Errorf("%s: read at %v, want %v", tc.name, f.asked, tc.asked)
		}
	}
	if err := FirstBytes(req(http.MethodGet), local, fi); err != nil {
		t.Errorf("local file: %v", err)
	}
	if off, _ := local.Seek(0, io.SeekCurrent); off != 0 {
		t.Errorf("local file read: offset %d", off)
	}
}
