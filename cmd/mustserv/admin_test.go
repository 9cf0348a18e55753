package main

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mustserv/internal/config"
)

// postForm posts a form with the session cookie and returns the status.
func postForm(t *testing.T, target, cookie string, form url.Values) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", "mustserv_session="+cookie)
	c := noRedirect
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// pacingForm is the admin's pacing form with the defaults and uplink.
func pacingForm(uplink string) url.Values {
	return url.Values{"enabled": {"false", "true"}, "factor": {"1.25"}, "burst": {"8s"}, "window": {"4s"},
		"uplink": {uplink}, "per_client": {"0"}, "unknown_rate": {"8Mbit"}, "on_full": {"reject"}}
}

// TestAdminChangesLive: libraries and pacing changed on the admin pages
// take effect at once, are written to the data folder's mustserv.toml
// (the server was started without --config) and hold after a restart;
// a refused change changes nothing.
func TestAdminChangesLive(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	extra := t.TempDir()
	clip, err := os.ReadFile(filepath.Join(mediaDir, mp4Path))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(extra, "clip.mp4"), clip, 0o644); err != nil {
		t.Fatal(err)
	}
	music := filepath.Join(mediaDir, "Music")
	s := startRun(t, nil, "--auth", "--listen", "127.0.0.1:0", "--data", data, music)
	if _, _, err := runCmd(t, "user", "add", "root", "--role", "admin", "--data", data, "--password-file", passwordFile(t, "root password")); err != nil {
		t.Fatal(err)
	}
	cookie, code := login(t, s.URL, "root", "root password")
	if cookie == "" {
		t.Fatalf("login: %d", code)
	}
	// Streams are asked for by HEAD: a whole paced body takes its time.
	getAs := func(path string) int {
		method := http.MethodGet
		if strings.HasPrefix(path, "/stream/") {
			method = http.MethodHead
		}
		resp, _ := do(t, method, s.URL+path, "Cookie", "mustserv_session="+cookie)
		return resp.StatusCode
	}
	// until polls a bounded number of times for a scan to catch up.
	until := func(path string, want int) int {
		var got int
		for range 200 {
			if got = getAs(path); got == want {
				break
			}
			time.Sleep(25 * time.Millisecond) // polling, bounded by the loop
		}
		return got
	}
	if c := getAs("/stream/Extra/clip.mp4"); c != http.StatusNotFound {
		t.Fatalf("Extra before it is added: %d", c)
	}
	// Refused: a path that is no folder, a taken name. Nothing changes.
	for _, f := range []url.Values{
		{"name": {"Extra"}, "path": {filepath.Join(extra, "nothing-here")}},
		{"name": {"Music"}, "path": {extra}},
		{"name": {"Extra"}, "path": {""}},
		// A URL the tree cannot open (an unknown parameter): refused
		// now, or the server would not start again.
		{"name": {"Bucket"}, "path": {"s3://bucket/music?colour=blue"}},
	} {
		if c := postForm(t, s.URL+"/admin/libraries", cookie, f); c != http.StatusBadRequest {
			t.Errorf("add library %v: %d, want 400", f, c)
		}
	}
	if _, err := os.Stat(filepath.Join(data, configFile)); !os.IsNotExist(err) {
		t.Errorf("a refused change wrote %s: %v", configFile, err)
	}
	if c := postForm(t, s.URL+"/admin/libraries", cookie, url.Values{"name": {"Extra"}, "path": {extra}}); c != http.StatusSeeOther {
		t.Fatalf("add library: %d, want 303", c)
	}
	if c := getAs("/stream/Extra/clip.mp4"); c != http.StatusOK {
		t.Errorf("stream of the added library: %d", c)
	}
	if c := until("/api/browse/Extra", http.StatusOK); c != http.StatusOK {
		t.Errorf("the added library was not scanned into the index: %d", c)
	}

	// Pacing: a bad value is refused, a good one reaches the pacer.
	budget := func() string {
		resp, body := get(t, s.URL+"/metrics", "Cookie", "mustserv_session="+cookie)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("metrics: %d", resp.StatusCode)
		}
		for _, l := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(l, "mustserv_uplink_budget_bits_per_second "); ok {
				return v
			}
		}
		return ""
	}
	if c := postForm(t, s.URL+"/admin/pacing", cookie, pacingForm("fast")); c != http.StatusBadRequest {
		t.Errorf("pacing with uplink \"fast\": %d, want 400", c)
	}
	if b := budget(); b != "0" {
		t.Errorf("budget after a refused change: %s, want 0", b)
	}
	if c := postForm(t, s.URL+"/admin/pacing", cookie, pacingForm("100Mbit")); c != http.StatusSeeOther {
		t.Errorf("pacing: %d, want 303", c)
	}
	if b := budget(); b != "1e+08" && b != "100000000" {
		t.Errorf("budget after the change: %s, want 100000000", b)
	}
	// The file holds the admin's changes, not the command line's folder.
	file, err := config.Load(filepath.Join(data, configFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(file.Libraries) != 1 || file.Libraries[0].Name != "Extra" || file.Pace.Uplink != 100_000_000 {
		t.Errorf("%s: libraries %+v, uplink %v", configFile, file.Libraries, file.Pace.Uplink)
	}
	if _, err := os.Stat(filepath.Join(data, configFile+".bak")); err != nil {
		t.Errorf("no .bak after the second save: %v", err)
	}

	// A restart on the same data folder keeps them.
	s.Stop(t)
	s = startRun(t, nil, "--auth", "--listen", "127.0.0.1:0", "--data", data, music)
	cookie, _ = login(t, s.URL, "root", "root password")
	if c := getAs("/stream/Extra/clip.mp4"); c != http.StatusOK {
		t.Errorf("the added library after a restart: %d", c)
	}
	if b := budget(); b != "1e+08" && b != "100000000" {
		t.Errorf("budget after a restart: %s", b)
	}
	// Removing the library stops serving it and drops it from the index.
	if c := postForm(t, s.URL+"/admin/libraries/Extra/delete", cookie, nil); c != http.StatusSeeOther {
		t.Fatalf("remove library: %d, want 303", c)
	}
	if c := getAs("/stream/Extra/clip.mp4"); c != http.StatusNotFound {
		t.Errorf("stream of a removed library: %d, want 404", c)
	}
	if c := until("/api/browse/Extra", http.StatusNotFound); c != http.StatusNotFound {
		t.Errorf("index of a removed library: %d, want 404", c)
	}
}
