package web

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mustserv/internal/config"
	"mustserv/internal/index"
	"mustserv/internal/library"
	"mustserv/internal/probe"
	"mustserv/internal/scan"
	"mustserv/internal/stream"
)

// fixedTime is every file's modification time and the scan's end, so that
// the golden files do not change from run to run.
var fixedTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// badName is a file name that is not valid UTF-8: JSON cannot carry it,
// its escaped stream URL can.
const badName = "bad \xff name.ogg"

// indexFile is one file of the test libraries, on disk and in the index.
type indexFile struct {
	lib, path, kind string
	dur             float64
	tags            probe.Tags
	cover           bool // an embedded picture
	streams         []probe.Stream
}

var indexFiles = []indexFile{
	{lib: "Music", path: "Björk/Homogenic/01 Hunter.mp3", kind: "audio", dur: 255.4, cover: true,
		tags:    probe.Tags{Title: "Hunter", Artists: []string{"Björk"}, Album: "Homogenic", AlbumArtists: []string{"Björk"}, Track: 1, Year: 1997, Genres: []string{"Electronic"}},
		streams: []probe.Stream{{Type: "audio", Codec: "mp3", SampleRate: 44100, Channels: 2}}},
	{lib: "Music", path: "Björk/Homogenic/02 Jóga.mp3", kind: "audio", dur: 305,
		tags: probe.Tags{Title: "Jóga", Artists: []string{"Björk"}, Album: "Homogenic", AlbumArtists: []string{"Björk"}, Track: 2, Year: 1997}},
	{lib: "Music", path: "Various/a #1?.mp3", kind: "audio", dur: 61,
		tags: probe.Tags{Title: "Tom & Jerry <live>", Artists: []string{"Tom", "Jerry"}}},
	{lib: "Music", path: "Various/50% off.flac", kind: "audio", dur: 10},
	{lib: "Music", path: "Various/" + badName, kind: "audio", dur: 3},
	{lib: "Music", path: "Various/emoji 🎵.opus", kind: "audio", dur: 42,
		tags: probe.Tags{Title: "Emoji", Artists: []string{"Björk"}}},
	{lib: "Videos", path: "clip.mp4", kind: "video", dur: 5,
		streams: []probe.Stream{{Type: "video", Codec: "h264", Width: 1280, Height: 720, FrameRate: 25}, {Type: "audio", Codec: "aac", SampleRate: 48000, Channels: 2}}},
}

// testIndex writes indexFiles to disk under a new folder (one subfolder
// per library, plus Videos' folder.jpg) and to a new index, as a scan
// would.
func testIndex(t *testing.T) (*index.Index, *library.Tree) {
	t.Helper()
	return testIndexDriver(t, "sqlite")
}

// testIndexDriver is testIndex through a database/sql driver of choice.
func testIndexDriver(t *testing.T, driver string) (*index.Index, *library.Tree) {
	t.Helper()
	ctx := t.Context()
	base := t.TempDir()
	b := &index.Batch{Folders: []index.FolderRecord{{Library: "Videos", Path: "", Cover: "folder.jpg"}}}
	for _, f := range indexFiles {
		writeLibrary(t, filepath.Join(base, f.lib), filepath.FromSlash(f.path))
		rep := &probe.Report{Container: strings.TrimPrefix(filepath.Ext(f.path), "."), Duration: f.dur,
			BitrateAvg: 320_000, BitratePeak: 400_000, PeakMethod: "exact", Tags: f.tags, Streams: f.streams}
		if f.cover {
			rep.Cover = &probe.Cover{MIME: "image/jpeg", Offset: 10, Size: 100}
		}
		b.Puts = append(b.Puts, index.Record{Library: f.lib, Path: f.path, Kind: f.kind, Size: int64(len("bytes of ") + len(f.path)),
			ModTime: fixedTime, Hash: []byte(f.path), Report: rep})
	}
	writeLibrary(t, filepath.Join(base, "Videos"), "folder.jpg")
	x, err := index.OpenDriver(ctx, driver, filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	if err := x.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := x.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for _, lib := range []string{"Music", "Videos"} {
		if err := x.Scanned(ctx, lib, fixedTime); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.SetOnline(ctx, "Videos", false, "folder not mounted"); err != nil {
		t.Fatal(err)
	}
	tree, err := library.Open([]config.Library{{Name: "Music", Path: filepath.Join(base, "Music")}, {Name: "Videos", Path: filepath.Join(base, "Videos")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tree.Close() })
	return x, tree
}

// fakeCovers serves a picture for every item that has one: its bytes name
// the ID and size, so that every (id, size) has its own ETag.
type fakeCovers struct {
	x    *index.Index
	mime string
	mu   sync.Mutex
	got  []string // "id size" of each call
}

func (c *fakeCovers) Cover(ctx context.Context, id string, size int) ([]byte, string, error) {
	c.mu.Lock()
	c.got = append(c.got, id+" "+strconv.Itoa(size))
	c.mu.Unlock()
	if _, err := c.x.CoverOf(ctx, id); err != nil {
		return nil, "", err
	}
	return []byte(fmt.Sprintf("picture of %s at %d", id, size)), c.mime, nil
}

// fakeScanner is a scanner whose scan runs until the test says.
type fakeScanner struct {
	mu      sync.Mutex
	running bool
	starts  int
}

func (s *fakeScanner) Progress() scan.Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := scan.Progress{Running: s.running, Started: fixedTime, Files: 1234, Probed: 34, Unchanged: 1200, Queued: 5, Rate: 12.5}
	if s.running {
		p.Library = "Music"
		p.ETA = 2 * time.Second
	} else {
		p.Finished = fixedTime.Add(time.Minute)
	}
	return p
}

func (s *fakeScanner) Start() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return false
	}
	s.running = true
	s.starts++
	return true
}

// indexServer serves the test libraries with the index, covers and a
// scanner.
func indexServer(t *testing.T) (*httptest.Server, *index.Index) {
	t.Helper()
	x, tree := testIndex(t)
	srv := httptest.NewServer(New(Options{Tree: tree, Stream: stream.New(time.Minute), Index: x,
		Covers: &fakeCovers{x: x, mime: "image/jpeg"}, Scanner: &fakeScanner{}}))
	t.Cleanup(srv.Close)
	return srv, x
}

var hexID = regexp.MustCompile(`\b[0-9a-f]{16}\b`)

// normalizeIDs replaces each distinct ID (16 hex digits: items' are
// random) by id1, id2, … in order of appearance.
func normalizeIDs(s string) string {
	ids := map[string]string{}
	return hexID.ReplaceAllStringFunc(s, func(id string) string {
		if n, ok := ids[id]; ok {
			return n
		}
		ids[id] = "id" + strconv.Itoa(len(ids)+1)
		return ids[id]
	})
}

// ids is what the tests need to name: items by path, albums and artists
// by name.
func ids(t *testing.T, x *index.Index) map[string]string {
	t.Helper()
	ctx := t.Context()
	m := map[string]string{}
	for _, f := range indexFiles {
		it, err := x.ItemAt(ctx, f.lib, f.path)
		if err != nil {
			t.Fatal(err)
		}
		m[f.lib+"/"+f.path] = it.ID
	}
	albums, _, err := x.Albums(ctx, index.Page{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range albums {
		m["album "+a.Name] = a.ID
	}
	artists, _, err := x.Artists(ctx, index.Page{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range artists {
		m["artist "+a.Name] = a.ID
	}
	return m
}

func TestAPIGolden(t *testing.T) {
	t.Parallel()
	srv, x := indexServer(t)
	id := ids(t, x)
	tests := []struct{ name, target string }{
		{"libraries", "/api/libraries"},
		{"browse_root", "/api/browse/"},
		{"browse_library", "/api/browse/Music"},
		{"browse_folder", "/api/browse/Music/Various/"},
		{"browse_videos", "/api/browse/Videos"},
		{"item", "/api/items/" + id["Music/Björk/Homogenic/01 Hunter.mp3"]},
		{"item_video", "/api/items/" + id["Videos/clip.mp4"]},
		{"search", "/api/search?q=bj%C3%B6rk"},
		{"search_page", "/api/search?q=bjork&limit=1&offset=1"},
		{"search_none", "/api/search?q=nothing-like-this"},
		{"albums", "/api/albums"},
		{"albums_past_end", "/api/albums?limit=10&offset=10"},
		{"album", "/api/albums/" + id["album Homogenic"]},
		{"artists", "/api/artists?limit=2"},
		{"artist", "/api/artists/" + id["artist Björk"]},
		{"scan", "/api/scan"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body := get(t, srv, "GET", tt.target, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s = %d %s", tt.target, resp.StatusCode, body)
			}
			if got, want := resp.Header.Get("Content-Type"), "application/json; charset=utf-8"; got != want {
				t.Errorf("Content-Type %q; want %q", got, want)
			}
			if !json.Valid([]byte(body)) {
				t.Fatalf("not JSON: %s", body)
			}
			if tt.name == "browse_root" {
				_, libs := get(t, srv, "GET", "/api/libraries", nil)
				if body != libs {
					t.Errorf("/api/browse/ differs from /api/libraries:\n%s", cmp.Diff(libs, body))
				}
				return
			}
			golden(t, "api/"+tt.name+".json", normalizeIDs(body))
		})
	}
}

// TestAPIStreamURLs follows the stream URL of every item of a folder whose
// names need escaping, one of them not even UTF-8: each must reach its
// file, whose bytes name the path on disk.
func TestAPIStreamURLs(t *testing.T) {
	t.Parallel()
	srv, _ := indexServer(t)
	_, body := get(t, srv, "GET", "/api/browse/Music/Various", nil)
	var ls struct {
		Items []struct {
			Name, Stream string
		}
	}
	if err := json.Unmarshal([]byte(body), &ls); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range ls.Items {
		u, err := url.Parse(it.Stream)
		if err != nil || u.RawQuery != "" || u.Fragment != "" || u.Host != "" {
			t.Errorf("stream %q: want a plain path (%v)", it.Stream, err)
			continue
		}
		resp, content := get(t, srv, "GET", it.Stream, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d", it.Stream, resp.StatusCode)
			continue
		}
		got = append(got, strings.TrimPrefix(content, "bytes of "))
		if want := "/stream/Music/" + strings.TrimPrefix(content, "bytes of "); u.Path != want {
			t.Errorf("stream %q decodes to %q; want %q", it.Stream, u.Path, want)
		}
	}
	want := []string{"Various/50% off.flac", "Various/a #1?.mp3", "Various/" + badName, "Various/emoji 🎵.opus"}
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("files reached (-want +got):\n%s", diff)
	}
}

func TestAPIErrors(t *testing.T) {
	t.Parallel()
	srv, _ := indexServer(t)
	bare := webServer(t, Options{}) // no index, covers or scanner
	tests := []struct {
		name    string
		srv     *httptest.Server
		target  string
		want    int
		wantMsg string
	}{
		{"limit zero", srv, "/api/albums?limit=0", 400, "limit must be a whole number from 1 to 500"},
		{"limit too big", srv, "/api/artists?limit=501", 400, "limit must be a whole number from 1 to 500"},
		{"limit not a number", srv, "/api/search?q=a&limit=ten", 400, "limit must be a whole number from 1 to 500"},
		{"negative offset", srv, "/api/albums?offset=-1", 400, "offset must be a whole number from 0 to 10000000"},
		{"offset not a number", srv, "/api/artists?offset=1e3", 400, "offset must be a whole number from 0 to 10000000"},
		{"no query", srv, "/api/search", 400, "q is required"},
		{"blank query", srv, "/api/search?q=%20%20", 400, "q is required"},
		{"query too long", srv, "/api/search?q=" + strings.Repeat("a", 501), 400, "q is longer than 500 bytes"},
		{"query not UTF-8", srv, "/api/search?q=%FF", 400, "q is not valid UTF-8"},
		{"query only excludes", srv, "/api/search?q=-live", 400, "the query only excludes (-): say what to search for too"},
		{"unknown item", srv, "/api/items/0123456789abcdef", 404, "not found"},
		{"unknown album", srv, "/api/albums/nope", 404, "not found"},
		{"unknown artist", srv, "/api/artists/nope", 404, "not found"},
		{"unknown library", srv, "/api/browse/Nope", 404, "not found"},
		{"unknown folder", srv, "/api/browse/Music/Nope", 404, "not found"},
		{"cover size", srv, "/api/covers/x?size=100", 400, "size must be 64, 128, 256, 512, or 0 for the original"},
		{"cover missing", srv, "/api/covers/0123456789abcdef", 404, "not found"},
		{"no index: libraries", bare, "/api/libraries", 503, "index not ready"},
		{"no index: browse", bare, "/api/browse/Small", 503, "index not ready"},
		{"no index: item", bare, "/api/items/x", 503, "index not ready"},
		{"no index: search", bare, "/api/search?q=a", 503, "index not ready"},
		{"no index: albums", bare, "/api/albums", 503, "index not ready"},
		{"no index: album", bare, "/api/albums/x", 503, "index not ready"},
		{"no index: artists", bare, "/api/artists", 503, "index not ready"},
		{"no index: artist", bare, "/api/artists/x", 503, "index not ready"},
		{"no covers", bare, "/api/covers/x", 503, "covers not available"},
		{"no scanner", bare, "/api/scan", 503, "scanner not available"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body := get(t, tt.srv, "GET", tt.target, nil)
			if resp.StatusCode != tt.want {
				t.Errorf("GET %s = %d; want %d", tt.target, resp.StatusCode, tt.want)
			}
			if got := resp.Header.Get("Content-Type"); got != "application/json; charset=utf-8" {
				t.Errorf("Content-Type %q", got)
			}
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if e.Error != tt.wantMsg {
				t.Errorf("error %q; want %q", e.Error, tt.wantMsg)
			}
		})
	}
}

// TestAPIInternalError: a failing index is a 500 that says nothing of the
// failure to the client, and logs it.
func TestAPIInternalError(t *testing.T) {
	t.Parallel()
	x, tree := testIndex(t)
	logs := newLogBuffer()
	srv := httptest.NewServer(New(Options{Tree: tree, Stream: stream.New(time.Minute), Index: x,
		Logger: slog.New(slog.NewTextHandler(logs, nil))}))
	t.Cleanup(srv.Close)
	x.Close()
	resp, body := get(t, srv, "GET", "/api/albums", nil)
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("status %d; want 500", resp.StatusCode)
	}
	if want := `{"error":"Internal Server Error"}` + "\n"; body != want {
		t.Errorf("body %q; want %q", body, want)
	}
	if !strings.Contains(logs.String(), "request failed") || !strings.Contains(logs.String(), "closed") {
		t.Errorf("log %q lacks the error", logs.String())
	}
}

func TestCovers(t *testing.T) {
	t.Parallel()
	x, tree := testIndex(t)
	covers := &fakeCovers{x: x, mime: "image/jpeg"}
	srv := httptest.NewServer(New(Options{Tree: tree, Stream: stream.New(time.Minute), Index: x, Covers: covers}))
	t.Cleanup(srv.Close)
	id := ids(t, x)
	hunter := "/api/covers/" + id["Music/Björk/Homogenic/01 Hunter.mp3"]

	resp, body := get(t, srv, "GET", hunter, nil)
	if resp.StatusCode != http.StatusOK || body != "picture of "+id["Music/Björk/Homogenic/01 Hunter.mp3"]+" at 256" {
		t.Fatalf("GET %s = %d %q; want 200 with the 256 px picture", hunter, resp.StatusCode, body)
	}
	etag := resp.Header.Get("ETag")
	if !regexp.MustCompile(`^"[A-Za-z0-9_-]{24}"$`).MatchString(etag) {
		t.Errorf("ETag %q; want a strong quoted tag", etag)
	}
	want := map[string]string{"Content-Type": "image/jpeg", "Cache-Control": "private, max-age=86400",
		"X-Content-Type-Options": "nosniff", "Content-Length": strconv.Itoa(len(body))}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s %q; want %q", k, got, v)
		}
	}

	tests := []struct {
		name      string
		target    string
		header    http.Header
		want      int
		wantETag  bool // the same ETag as the first answer
		wantEmpty bool
	}{
		{name: "same again", target: hunter, want: 200, wantETag: true},
		{name: "If-None-Match", target: hunter, header: http.Header{"If-None-Match": {etag}}, want: 304, wantETag: true, wantEmpty: true},
		{name: "If-None-Match in a list", target: hunter, header: http.Header{"If-None-Match": {`"other", ` + etag}}, want: 304, wantETag: true, wantEmpty: true},
		{name: "If-None-Match weak", target: hunter, header: http.Header{"If-None-Match": {"W/" + etag}}, want: 304, wantETag: true, wantEmpty: true},
		{name: "If-None-Match other", target: hunter, header: http.Header{"If-None-Match": {`"other"`}}, want: 200, wantETag: true},
		{name: "explicit default size", target: hunter + "?size=256", want: 200, wantETag: true},
		{name: "other size, other tag", target: hunter + "?size=64", want: 200},
		{name: "range", target: hunter, header: http.Header{"Range": {"bytes=0-6"}}, want: 206, wantETag: true},
	}
	for _, tt := range tests {
		resp, body := get(t, srv, "GET", tt.target, tt.header)
		if resp.StatusCode != tt.want {
			t.Errorf("%s: status %d; want %d", tt.name, resp.StatusCode, tt.want)
		}
		if got := resp.Header.Get("ETag") == etag; got != tt.wantETag {
			t.Errorf("%s: ETag %q, first %q: same = %v; want %v", tt.name, resp.Header.Get("ETag"), etag, got, tt.wantETag)
		}
		if (body == "") != tt.wantEmpty {
			t.Errorf("%s: body %q", tt.name, body)
		}
	}

	// The album's cover is its cover item's; the original is size 0; an
	// item with a folder image has one too.
	covers.mu.Lock()
	covers.got = nil
	covers.mu.Unlock()
	_, album := get(t, srv, "GET", "/api/albums/"+id["album Homogenic"], nil)
	var a struct{ Cover string }
	json.Unmarshal([]byte(album), &a)
	if a.Cover != hunter {
		t.Errorf("album cover %q; want %q", a.Cover, hunter)
	}
	for _, target := range []string{hunter + "?size=0", "/api/covers/" + id["Videos/clip.mp4"] + "?size=512"} {
		if resp, _ := get(t, srv, "GET", target, nil); resp.StatusCode != 200 {
			t.Errorf("GET %s = %d; want 200", target, resp.StatusCode)
		}
	}
	covers.mu.Lock()
	got := covers.got
	covers.mu.Unlock()
	wantCalls := []string{id["Music/Björk/Homogenic/01 Hunter.mp3"] + " 0", id["Videos/clip.mp4"] + " 512"}
	if diff := cmp.Diff(wantCalls, got); diff != "" {
		t.Errorf("Cover calls (-want +got):\n%s", diff)
	}
}

// TestCoverTypes: a picture is served with its own type only if it is one
// of the image types browsers show without running anything.
func TestCoverTypes(t *testing.T) {
	t.Parallel()
	x, tree := testIndex(t)
	id := ids(t, x)["Music/Björk/Homogenic/01 Hunter.mp3"]
	for mime, want := range map[string]string{
		"image/jpeg": "image/jpeg", "image/jpg": "image/jpeg", "IMAGE/PNG": "image/png", "image/webp": "image/webp",
		"image/svg+xml": "application/octet-stream", "text/html": "application/octet-stream", "": "application/octet-stream",
	} {
		srv := httptest.NewServer(New(Options{Tree: tree, Stream: stream.New(time.Minute), Index: x, Covers: &fakeCovers{x: x, mime: mime}}))
		resp, _ := get(t, srv, "GET", "/api/covers/"+id, nil)
		srv.Close()
		if got := resp.Header.Get("Content-Type"); got != want {
			t.Errorf("cover of type %q served as %q; want %q", mime, got, want)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "sandbox") {
			t.Errorf("cover of type %q: Content-Security-Policy %q lacks sandbox", mime, csp)
		}
	}
}

func TestAPIItemsCarryNoCoverWithoutCovers(t *testing.T) {
	t.Parallel()
	x, tree := testIndex(t)
	srv := httptest.NewServer(New(Options{Tree: tree, Stream: stream.New(time.Minute), Index: x}))
	t.Cleanup(srv.Close)
	for _, target := range []string{"/api/browse/Music/Björk/Homogenic", "/api/albums", "/search?q=bjork", "/albums"} {
		_, body := get(t, srv, "GET", target, nil)
		if strings.Contains(body, "/api/covers/") {
			t.Errorf("GET %s links covers that nothing serves", target)
		}
	}
}

func TestScanAPI(t *testing.T) {
	t.Parallel()
	x, tree := testIndex(t)
	sc := &fakeScanner{}
	srv := httptest.NewServer(New(Options{Tree: tree, Stream: stream.New(time.Minute), Index: x, Scanner: sc}))
	t.Cleanup(srv.Close)
	post := func(target string, h http.Header) (*http.Response, string) {
		return get(t, srv, "POST", target, h)
	}
	// In order: the first POST starts a scan, the second finds it running.
	steps := []struct {
		name        string
		method      string
		target      string
		header      http.Header
		want        int
		wantRunning bool
		wantStarts  int
	}{
		{name: "idle", method: "GET", target: "/api/scan", want: 200},
		{name: "cross-site POST refused", method: "POST", target: "/api/scan", header: http.Header{"Sec-Fetch-Site": {"cross-site"}}, want: 403},
		{name: "start", method: "POST", target: "/api/scan", header: http.Header{"Sec-Fetch-Site": {"same-origin"}}, want: 202, wantRunning: true, wantStarts: 1},
		{name: "already running", method: "POST", target: "/api/scan", want: 409, wantRunning: true, wantStarts: 1},
		{name: "running", method: "GET", target: "/api/scan", want: 200, wantRunning: true, wantStarts: 1},
	}
	for _, st := range steps {
		var resp *http.Response
		var body string
		if st.method == "POST" {
			resp, body = post(st.target, st.header)
		} else {
			resp, body = get(t, srv, "GET", st.target, st.header)
		}
		if resp.StatusCode != st.want {
			t.Fatalf("%s: %s %s = %d %s; want %d", st.name, st.method, st.target, resp.StatusCode, body, st.want)
		}
		sc.mu.Lock()
		starts := sc.starts
		sc.mu.Unlock()
		if starts != st.wantStarts {
			t.Errorf("%s: %d scans started; want %d", st.name, starts, st.wantStarts)
		}
		if st.want == 403 {
			continue
		}
		var p scan.Progress
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatalf("%s: %v in %s", st.name, err, body)
		}
		if p.Running != st.wantRunning || p.Files != 1234 {
			t.Errorf("%s: progress %+v; want running %v", st.name, p, st.wantRunning)
		}
	}
}

func TestScanForm(t *testing.T) {
	t.Parallel()
	x, tree := testIndex(t)
	sc := &fakeScanner{}
	srv := httptest.NewServer(New(Options{Tree: tree, Stream: stream.New(time.Minute), Index: x, Scanner: sc}))
	t.Cleanup(srv.Close)
	resp, _ := get(t, srv, "POST", "/scan", nil)
	sc.mu.Lock()
	starts := sc.starts
	sc.mu.Unlock()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" || starts != 1 {
		t.Errorf("POST /scan = %d Location %q, %d scans; want 303 / and 1 scan", resp.StatusCode, resp.Header.Get("Location"), starts)
	}
	if resp, _ := get(t, webServer(t, Options{}), "POST", "/scan", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("POST /scan without scanner = %d; want 503", resp.StatusCode)
	}
}

func TestSetPlaylists(t *testing.T) {
	t.Parallel()
	srv, x := indexServer(t)
	id := ids(t, x)
	album := "/api/albums/" + id["album Homogenic"]
	artist := "/api/artists/" + id["artist Björk"]
	tests := []struct {
		name, target, golden, disposition string
	}{
		{"album m3u8", album + "/playlist.m3u8", "album.m3u8", `attachment; filename=Homogenic.m3u8`},
		{"album pls", album + "/playlist.pls", "album.pls", `attachment; filename=Homogenic.pls`},
		{"album xspf", album + "/playlist.xspf", "album.xspf", `attachment; filename=Homogenic.xspf`},
		{"artist m3u8", artist + "/playlist.m3u8", "artist.m3u8", `attachment; filename*=utf-8''Bj%C3%B6rk.m3u8`},
		{"search m3u8", "/api/search/playlist.m3u8?q=path:various", "search.m3u8", `attachment; filename="search path:various.m3u8"`},
		{"search xspf one", "/api/search/playlist.xspf?q=hunter&limit=1", "search.xspf", `attachment; filename="search hunter.xspf"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body := get(t, srv, "GET", tt.target, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s = %d %s", tt.target, resp.StatusCode, body)
			}
			if got := resp.Header.Get("Content-Disposition"); got != tt.disposition {
				t.Errorf("Content-Disposition %q; want %q", got, tt.disposition)
			}
			golden(t, "api/"+tt.golden, body)
		})
	}
	for target, want := range map[string]int{
		album + "/playlist.m3u":                 404,
		album + "/other.m3u8":                   404,
		album + "/playlist.json":                404,
		"/api/albums/nope/playlist.m3u8":        404,
		"/api/artists/nope/playlist.pls":        404,
		"/api/search/playlist.m3u8":             400,
		"/api/search/playlist.m3u8?q=-x":        400,
		"/api/search/playlist.m3u8?q=a&limit=0": 400,
	} {
		if resp, body := get(t, srv, "GET", target, nil); resp.StatusCode != want {
			t.Errorf("GET %s = %d %q; want %d", target, resp.StatusCode, body, want)
		}
	}
	bare := webServer(t, Options{})
	if resp, _ := get(t, bare, "GET", "/api/albums/x/playlist.m3u8", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("album playlist without index = %d; want 503", resp.StatusCode)
	}
}

// TestArtistTracks: an artist's playlist holds its own tracks of the
// albums it appears on, not a whole compilation.
func TestArtistTracks(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	x, err := index.Open(ctx, filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	rec := func(p, title string, artists ...string) index.Record {
		return index.Record{Library: "M", Path: p, Kind: "audio", Size: 1, ModTime: fixedTime, Hash: []byte(p),
			Report: &probe.Report{Tags: probe.Tags{Title: title, Album: "Hits", AlbumArtists: []string{"Various"}, Artists: artists}}}
	}
	b := &index.Batch{Puts: []index.Record{rec("c/1.mp3", "One", "A"), rec("c/2.mp3", "Two", "B"), rec("c/3.mp3", "Three", "a", "B")}}
	if err := x.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := x.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	artists, _, err := x.Artists(ctx, index.Page{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, ar := range artists {
		_, _, its, err := artistTracks(ctx, x, ar.ID, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range its {
			got[ar.Name] = append(got[ar.Name], it.Title)
		}
	}
	want := map[string][]string{"A": {"One", "Three"}, "B": {"Two", "Three"}, "Various": {"One", "Two", "Three"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("artists' tracks (-want +got):\n%s", diff)
	}
}
