package stream

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"mustserv/internal/pace"
	"mustserv/internal/probe"
)

// pacedServers returns two servers of dir's files through ServePaced with
// policy pol: one hands bodies to the pacer's loop (its connections are in
// the request context), the other paces them in the handler.
func pacedServers(t testing.TB, dir string, pol Policy) (handed, copied *httptest.Server) {
	return pacedServersWith(t, dir, pace.Options{}, pol)
}

func pacedServersWith(t testing.TB, dir string, opts pace.Options, pol Policy) (handed, copied *httptest.Server) {
	pacer := pace.New(opts)
	t.Cleanup(pacer.Close)
	s := NewPaced(10*time.Second, Pacing{Pacer: pacer})
	serve := func(w http.ResponseWriter, r *http.Request, f *os.File, fi fs.FileInfo) {
		s.ServePaced(w, r, f, fi, Who{Client: "test", Policy: pol})
	}
	handed = httptest.NewUnstartedServer(fileHandler(t, dir, serve))
	handed.Config.ConnContext = ConnContext
	handed.Start()
	t.Cleanup(handed.Close)
	copied = httptest.NewServer(fileHandler(t, dir, serve))
	t.Cleanup(copied.Close)
	return handed, copied
}

// TestServePacedBudgetFull: when the budget has no room, a GET of a media
// body is refused with 503, Retry-After and a message, and without the
// representation's headers; what sends no media body — a 304, a HEAD, a
// 416, a file that is not media — is answered as usual.
func TestServePacedBudgetFull(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clip := content(3, clipSize)
	writeFile(t, dir, "clip.mp3", clip, fixtureTime())
	writeFile(t, dir, "notes.txt", []byte("hello"), fixtureTime())
	fi, err := os.Stat(dir + "/clip.mp3")
	if err != nil {
		t.Fatal(err)
	}
	etag := ETag(fi)
	// The unknown rate (8 Mbit/s) does not fit a 1 Mbit/s budget.
	opts := pace.Options{Uplink: 125_000, RetryAfter: 7 * time.Second}
	handed, copied := pacedServersWith(t, dir, opts, Policy{Enabled: true, Factor: 1.25, Burst: 8 * time.Second, UnknownRate: 8e6})
	client := newClient(t)
	for _, srv := range []*httptest.Server{handed, copied} {
		resp := send(t, client, http.MethodGet, srv.URL+"/clip.mp3", map[string]string{"Range": "bytes=100-"})
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "7" {
			t.Errorf("GET with the budget full: %s, Retry-After %q; want 503 and 7", resp.Status, resp.Header.Get("Retry-After"))
		}
		for _, h := range []string{"Content-Range", "Etag", "Last-Modified", "Accept-Ranges"} {
			if v := resp.Header.Get(h); v != "" {
				t.Errorf("503 has %s: %q", h, v)
			}
		}
		if !strings.Contains(string(body), "streaming capacity") || !strings.Contains(string(body), "8.0 Mbit/s") {
			t.Errorf("503 body %q does not explain", body)
		}

		for _, tc := range []struct {
			method, file string
			header       map[string]string
			want         int
		}{
			{http.MethodGet, "clip.mp3", map[string]string{"If-None-Match": etag}, http.StatusNotModified},
			{http.MethodHead, "clip.mp3", nil, http.StatusOK},
			{http.MethodGet, "clip.mp3", map[string]string{"Range": "bytes=999999999-"}, http.StatusRequestedRangeNotSatisfiable},
			{http.MethodGet, "notes.txt", nil, http.StatusOK},
		} {
			resp := send(t, client, tc.method, srv.URL+"/"+tc.file, tc.header)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s %s %v with the budget full: %s, want %d", tc.method, tc.file, tc.header, resp.Status, tc.want)
			}
		}
	}
}

// TestServePacedElsewhere: with the budget full, a stream that Elsewhere
// places is answered 307 to its URL, told its rate in bit/s; one that
// Elsewhere cannot place still gets 503.
func TestServePacedElsewhere(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "clip.mp3", content(3, clipSize), fixtureTime())
	pacer := pace.New(pace.Options{Uplink: 125_000})
	t.Cleanup(pacer.Close)
	s := NewPaced(10*time.Second, Pacing{Pacer: pacer})
	var asked []int64
	place := "http://10.0.0.2:8000/stream/clip.mp3"
	srv := httptest.NewServer(fileHandler(t, dir, func(w http.ResponseWriter, r *http.Request, f *os.File, fi fs.FileInfo) {
		s.ServePaced(w, r, f, fi, Who{Client: "test", Policy: Policy{Enabled: true, Factor: 1.25, UnknownRate: 8e6},
			Elsewhere: func(need int64) string { asked = append(asked, need); return place }})
	}))
	t.Cleanup(srv.Close)
	client := newClient(t)
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp := send(t, client, http.MethodGet, srv.URL+"/clip.mp3", map[string]string{"Range": "bytes=100-"})
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != place {
		t.Errorf("GET with the budget full and a peer: %s to %q, want 307 to %q", resp.Status, resp.Header.Get("Location"), place)
	}
	if resp.Header.Get("Content-Range") != "" || resp.Header.Get("Etag") != "" {
		t.Error("the redirect carries the file's headers")
	}
	if len(asked) != 1 || asked[0] != 8_000_000 {
		t.Errorf("Elsewhere asked for %v bit/s, want [8000000]", asked)
	}
	place = ""
	resp = send(t, client, http.MethodGet, srv.URL+"/clip.mp3", nil)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET with the budget full and no peer: %s, want 503", resp.Status)
	}
}

// TestServePacedHandsOver: on a plain TCP connection the body goes to the
// pacer's loop, which ends the connection with it (the response says
// Connection: close); the handler returns before the body is sent.
func TestServePacedHandsOver(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	big := content(4, 4<<20)
	writeFile(t, dir, "film.mkv", big, fixtureTime())
	pacer := pace.New(pace.Options{})
	t.Cleanup(pacer.Close)
	s := NewPaced(10*time.Second, Pacing{Pacer: pacer})
	returned := make(chan struct{}, 1)
	srv := httptest.NewUnstartedServer(fileHandler(t, dir, func(w http.ResponseWriter, r *http.Request, f *os.File, fi fs.FileInfo) {
		// 100 kB/s after a 1 s burst: the 4 MiB body takes 40 s.
		s.ServePaced(w, r, f, fi, Who{Client: "c", User: "ann", Path: "Films/film.mkv", Policy: Policy{Enabled: true, Factor: 1, Burst: time.Second, UnknownRate: 800_000}})
		returned <- struct{}{}
	}))
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context { return ConnContext(ctx, c) }
	srv.Start()
	t.Cleanup(srv.Close)

	resp := send(t, newClient(t), http.MethodGet, srv.URL+"/film.mkv", nil)
	defer resp.Body.Close()
	<-returned // long before 40 s
	if !resp.Close || resp.ContentLength != int64(len(big)) {
		t.Errorf("Close %v, Content-Length %d; want the connection closed after a %d-byte body", resp.Close, resp.ContentLength, len(big))
	}
	buf := make([]byte, 100_000)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	if string(buf) != string(big[:len(buf)]) {
		t.Error("the body's start differs from the file")
	}
	if st := pacer.Stats(); st.Handed != 1 || st.Reserved != 100_000 {
		t.Errorf("pacer %+v, want one handed stream reserving 100 kB/s", st)
	}
	// The admin's list names the stream by the caller's path and user.
	if st := pacer.Streams(); len(st) != 1 || st[0].Label != "Films/film.mkv" || st[0].User != "ann" || st[0].Client != "c" || !st[0].Handed {
		t.Errorf("Streams() = %+v, want the handed Films/film.mkv of ann (client c)", st)
	}
}

// TestServePacedStop: the pacer's list names a paced stream by the
// caller's path (the file's name when it gives none) and user, and Stop
// ends its body early, handed over or paced in the handler: the client
// sees a body short of its Content-Length.
func TestServePacedStop(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	big := content(5, 4<<20)
	writeFile(t, dir, "film.mkv", big, fixtureTime())
	pacer := pace.New(pace.Options{})
	s := NewPaced(10*time.Second, Pacing{Pacer: pacer})
	serve := func(w http.ResponseWriter, r *http.Request, f *os.File, fi fs.FileInfo) {
		// 100 kB/s after a 1 s burst: the 4 MiB body takes 40 s.
		s.ServePaced(w, r, f, fi, Who{Client: "c", User: "bob", Policy: Policy{Enabled: true, Factor: 1, Burst: time.Second, UnknownRate: 800_000}})
	}
	handed := httptest.NewUnstartedServer(fileHandler(t, dir, serve))
	handed.Config.ConnContext = ConnContext
	handed.Start()
	t.Cleanup(handed.Close)
	copied := httptest.NewServer(fileHandler(t, dir, serve))
	t.Cleanup(copied.Close)
	// A stream Stop missed would take 40 s.
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 10 * time.Second}

	for _, tc := range []struct {
		name   string
		srv    *httptest.Server
		handed bool
	}{{"handed", handed, true}, {"copied", copied, false}} {
		resp := send(t, client, http.MethodGet, tc.srv.URL+"/film.mkv", nil)
		if _, err := io.ReadFull(resp.Body, make([]byte, 100_000)); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		st := pacer.Streams()
		if len(st) != 1 || st[0].Label != "film.mkv" || st[0].User != "bob" || st[0].Handed != tc.handed {
			t.Fatalf("%s: Streams() = %+v, want film.mkv of bob, handed %v", tc.name, st, tc.handed)
		}
		if !pacer.Stop(st[0].ID) {
			t.Fatalf("%s: Stop = false", tc.name)
		}
		rest, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !errors.Is(err, io.ErrUnexpectedEOF) || 100_000+len(rest) >= len(big) {
			t.Errorf("%s: body after Stop: %d more bytes, %v; want it cut short (unexpected EOF)", tc.name, len(rest), err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := pacer.Shutdown(ctx); err != nil {
		t.Fatalf("stopped streams did not end: %v", err)
	}
	if st := pacer.Stats(); st.Active != 0 || st.Stopped != 2 {
		t.Errorf("pacer %+v, want both streams stopped and gone", st)
	}
}

func TestPeakRate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		rep  probe.Report
		size int64
		want int64
	}{
		{"unknown", probe.Report{Duration: 10}, 1000, 0},
		// Framing of a few percent raises the rate by as much.
		{"framing", probe.Report{Duration: 100, BitrateAvg: 1_000_000, BitratePeak: 2_000_000}, 13_000_000, 2_080_000},
		// A padded transport stream: payload 2.4 Mbit/s in an 8 Mbit/s mux.
		{"padded mux", probe.Report{Duration: 60, BitrateAvg: 2_400_000, BitratePeak: 2_400_000}, 60_000_000, 8_000_000},
		// A file with fewer bytes than its average claims keeps its peak.
		{"no scaling down", probe.Report{Duration: 10, BitrateAvg: 1_000_000, BitratePeak: 1_500_000}, 1_000_000, 1_500_000},
		// Cover art does not count.
		{"cover", probe.Report{Duration: 100, BitrateAvg: 128_000, BitratePeak: 128_000, Cover: &probe.Cover{Size: 2_000_000}}, 3_600_000, 128_000},
	} {
		if got := PeakRate(&tc.rep, tc.size); got != tc.want {
			t.Errorf("%s: PeakRate = %d, want %d", tc.name, got, tc.want)
		}
	}
}
