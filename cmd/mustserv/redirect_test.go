package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"mustserv/internal/testenv/origins"
)

// TestRedirectKeepsLinkLimits checks that a library with redirect = true
// keeps a signed link's limits when it sends the player to the storage:
// a session gets a presigned URL valid 4 h; a playlist's signed link gets
// one that expires no later than the link, never cached; a link bound to
// a client (bind=1) or capped to a rate (rate=) is not redirected at all,
// since the storage could enforce neither, and MuStServ serves the bytes
// itself; nobody gets a presigned URL without credentials.
func TestRedirectKeepsLinkLimits(t *testing.T) {
	t.Parallel()
	began := time.Now()
	const song = "01 Sine Ä.mp3"
	want := readFile(t, filepath.Join(mediaDir, "Music", "Sine Band", "First Album", song))
	v := origins.StartVersity(t)
	noteSecret(v.SecretKey)
	bucket := v.Bucket(t, "media")
	v.Put(t, bucket, "music/"+song, want)

	// link_ttl is the least config allows a round hour: the link's
	// remaining lifetime, not the 4 h of a session, must bound the
	// presigned URL. The pacer's burst outlasts the file, so the streams
	// served here are not held back (pacing is tested elsewhere).
	cfg := writeConfig(t, fmt.Sprintf(`[pace]
burst = "1h"

[auth]
link_ttl = "1h"

[[library]]
name = "Bucket"
url = %s
access_key = %s
secret_key = %s
redirect = true
`, tomlString(v.URL(bucket, "music")), tomlString(v.AccessKey), tomlString(v.SecretKey)))
	data := t.TempDir()
	const pw = "the listener's password"
	if _, stderr, err := runCmd(t, "user", "add", "listener", "--config", cfg, "--data", data, "--library", "Bucket",
		"--password-file", passwordFile(t, pw)); err != nil {
		t.Fatalf("user add: %v\n%s", err, stderr)
	}
	s := startRun(t, nil, "--auth", "--listen", "127.0.0.1:0", "--config", cfg, "--data", data)
	session, code := login(t, s.URL, "listener", pw)
	if session == "" {
		t.Fatalf("the listener cannot sign in: %d", code)
	}
	cookie := "mustserv_session=" + session
	t.Logf("versitygw answered in %v; the server started and the listener signed in after %v",
		v.Startup.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))

	stream := s.URL + "/stream/Bucket/" + url.PathEscape(song)
	storage := v.Endpoint + "/media/music/"

	t.Run("session", func(t *testing.T) {
		resp, _ := getStay(t, stream, "Cookie", cookie)
		loc := checkPresigned(t, resp, storage)
		if got := loc.Query().Get("X-Amz-Expires"); got != "14400" {
			t.Errorf("a session's presigned URL: X-Amz-Expires=%s, want 14400 (4 h)", got)
		}
		// The storage serves the file by that URL alone: no cookie, no
		// key, as a player following the redirect asks.
		resp, body := getStay(t, loc.String())
		if resp.StatusCode != http.StatusOK || sha256.Sum256(body) != sha256.Sum256(want) {
			t.Errorf("GET of the presigned URL: %s, %d bytes with another sha256 than the file's %d", resp.Status, len(body), len(want))
		}
	})

	t.Run("link", func(t *testing.T) {
		link := playlistLink(t, s.URL+"/playlist/Bucket.m3u8", cookie, stream)
		exp := linkExpiry(t, link)
		asked := time.Now()
		resp, _ := getStay(t, link)
		loc := checkPresigned(t, resp, storage)
		q := loc.Query()
		ttl, err := strconv.Atoi(q.Get("X-Amz-Expires"))
		if err != nil {
			t.Fatalf("X-Amz-Expires %q: %v", q.Get("X-Amz-Expires"), err)
		}
		// The link had at most what was left of its hour when asked.
		if left := exp.Sub(asked); ttl <= 3000 || ttl > 3600 || time.Duration(ttl)*time.Second > left {
			t.Errorf("a signed link's presigned URL: X-Amz-Expires=%d s, want it in (3000, 3600] and at most the link's remaining %v", ttl, left.Round(time.Second))
		}
		// And the URL stops working no later than the link does.
		signed, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
		if err != nil {
			t.Fatalf("X-Amz-Date %q: %v", q.Get("X-Amz-Date"), err)
		}
		if end := signed.Add(time.Duration(ttl) * time.Second); end.After(exp) {
			t.Errorf("the presigned URL expires at %v, after the link (%v)", end, exp)
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("the redirect of a signed link: Cache-Control %q, want no-store (the URL is the link's, for a while)", cc)
		}
		resp, body := getStay(t, loc.String())
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
			t.Errorf("GET of the link's presigned URL: %s, %d bytes, not the file's %d", resp.Status, len(body), len(want))
		}
	})

	// The storage could hold neither a client nor a rate to a link: such
	// links are served here, whole and by range.
	for _, query := range []string{"bind=1", "rate=100Mbit", "bind=1&rate=100Mbit"} {
		t.Run(query, func(t *testing.T) {
			link := playlistLink(t, s.URL+"/playlist/Bucket.m3u8?"+query, cookie, stream)
			resp, body := getStay(t, link)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" || !bytes.Equal(body, want) {
				t.Errorf("GET of a %s link: %s, Location %q, %d bytes; want 200 with the file's %d bytes from MuStServ",
					query, resp.Status, where(resp), len(body), len(want))
			}
			lo, hi := len(want)/3, len(want)/3+4095
			resp, body = getStay(t, link, "Range", fmt.Sprintf("bytes=%d-%d", lo, hi))
			if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Location") != "" || !bytes.Equal(body, want[lo:hi+1]) {
				t.Errorf("GET of a %s link, bytes=%d-%d: %s, Location %q, %d bytes, not the file's", query, lo, hi,
					resp.Status, where(resp), len(body))
			}
			if !strings.Contains(query, "bind=1") {
				return
			}
			// Still bound: from another address (127.0.0.2 is loopback
			// too) the link is refused, with no URL to take elsewhere.
			other := &http.Client{
				Transport:     &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext},
				CheckRedirect: noRedirect.CheckRedirect,
			}
			defer other.CloseIdleConnections()
			resp, err := other.Get(link)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Location") != "" {
				t.Errorf("GET of a %s link from 127.0.0.2: %s, Location %q; want 403 and no redirect", query, resp.Status, where(resp))
			}
		})
	}

	t.Run("no-credentials", func(t *testing.T) {
		link := playlistLink(t, s.URL+"/playlist/Bucket.m3u8", cookie, stream)
		for _, c := range []struct {
			name, url string
			want      int
		}{
			{"none", stream, http.StatusUnauthorized},
			{"other file", strings.Replace(link, "/stream/Bucket/", "/stream/Bucket/x", 1), http.StatusForbidden},
			{"changed token", link + "x", http.StatusForbidden},
		} {
			resp, _ := getStay(t, c.url)
			if resp.StatusCode != c.want || resp.Header.Get("Location") != "" {
				t.Errorf("%s: %s, Location %q; want %d and no redirect", c.name, resp.Status, where(resp), c.want)
			}
		}
	})
	t.Logf("the test took %v", time.Since(began).Round(time.Millisecond))
}

// getStay GETs target without following a redirect and returns the
// response with its whole body read.
func getStay(t *testing.T, target string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		t.Fatalf("GET %s: reading body: %v", target, err)
	}
	return resp, body.Bytes()
}

// where is the Location of resp without its query: a presigned URL's
// signature opens the file to anyone for hours, so messages leave it out.
func where(resp *http.Response) string {
	loc, _, _ := strings.Cut(resp.Header.Get("Location"), "?")
	return loc
}

// checkPresigned checks that resp is a 302 to a presigned URL below
// prefix and returns that URL.
func checkPresigned(t *testing.T, resp *http.Response, prefix string) *url.URL {
	t.Helper()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, prefix) || !strings.Contains(loc, "X-Amz-Signature=") {
		t.Fatalf("%s: %s to %q, want 302 to a presigned URL below %s", resp.Request.URL.Path, resp.Status, where(resp), prefix)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// playlistLink fetches the M3U8 playlist with the session cookie and
// returns its signed link of stream.
func playlistLink(t *testing.T, playlist, cookie, stream string) string {
	t.Helper()
	resp, body := get(t, playlist, "Cookie", cookie)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", playlist, resp.Status, body)
	}
	for _, l := range parseM3U(t, body) {
		if base, query, _ := strings.Cut(l, "?"); base == stream && strings.HasPrefix(query, "t=v1.") {
			u, err := url.Parse(l)
			if err != nil {
				t.Fatal(err)
			}
			noteSecret(u.Query().Get("t"))
			return l
		}
	}
	t.Fatalf("no signed link of %s in %s:\n%s", stream, playlist, body)
	return ""
}

// linkExpiry reads when a signed link stops working from its token,
// "v1.<key id>.<claims>.<mac>" with the claims' "exp" in Unix seconds.
func linkExpiry(t *testing.T, link string) time.Time {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(u.Query().Get("t"), ".")
	if len(parts) != 4 {
		t.Fatalf("the link's token has %d parts, want 4", len(parts))
	}
	claims, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Exp int64 }
	if err := json.Unmarshal(claims, &c); err != nil || c.Exp == 0 {
		t.Fatalf("the link's claims %s: %v", claims, err)
	}
	return time.Unix(c.Exp, 0)
}
