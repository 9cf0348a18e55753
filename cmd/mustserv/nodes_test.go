package main

import (
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSessionsAcrossNodes: two servers that share the signing keys and
// the accounts (key_file, state_file) accept each other's sessions and
// links, and a logout on one ends the session on the other.
func TestSessionsAcrossNodes(t *testing.T) {
	t.Parallel()
	shared := t.TempDir()
	cfg := writeConfig(t, "[auth]\nkey_file = "+tomlString(filepath.Join(shared, "signing.keys"))+
		"\nstate_file = "+tomlString(filepath.Join(shared, "state.db"))+"\n")
	videos := filepath.Join(mediaDir, "Videos")
	a := startRun(t, nil, "--auth", "--config", cfg, "--listen", "127.0.0.1:0", videos)
	b := startRun(t, nil, "--auth", "--config", cfg, "--listen", "127.0.0.1:0", videos)
	if _, _, err := runCmd(t, "user", "add", "ann", "--library", "Videos", "--config", cfg, "--password-file", passwordFile(t, "ann's password")); err != nil {
		t.Fatal(err)
	}
	cookie, code := login(t, a.URL, "ann", "ann's password")
	if cookie == "" {
		t.Fatalf("login on node a: %d", code)
	}
	me := func(s *server) int {
		resp, _ := get(t, s.URL+"/api/me", "Cookie", "mustserv_session="+cookie)
		return resp.StatusCode
	}
	if c := me(b); c != http.StatusOK {
		t.Errorf("node a's session on node b: %d, want 200", c)
	}
	// A link in a playlist from a plays from b.
	_, body := get(t, a.URL+"/playlist/Videos.m3u8", "Cookie", "mustserv_session="+cookie)
	var link string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "http") {
			link = l
			break
		}
	}
	if link == "" {
		t.Fatalf("no link in the playlist:\n%s", body)
	}
	if u, err := url.Parse(link); err == nil {
		noteSecret(u.Query().Get("t"))
	}
	resp, _ := do(t, http.MethodHead, strings.Replace(link, a.URL, b.URL, 1))
	if resp.StatusCode != http.StatusOK {
		t.Errorf("node a's link on node b: %d, want 200", resp.StatusCode)
	}
	// Logout on a: b learns of it from the shared store within a second.
	req, _ := http.NewRequest(http.MethodPost, a.URL+"/logout", nil)
	req.Header.Set("Cookie", "mustserv_session="+cookie)
	if resp, err := noRedirect.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	if c := me(a); c != http.StatusUnauthorized {
		t.Errorf("after logout on a: %d, want 401", c)
	}
	c := 0
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		if c = me(b); c == http.StatusUnauthorized {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling, bounded by the deadline
	}
	if c != http.StatusUnauthorized {
		t.Errorf("node b still accepts the session 3 s after logout on a: %d", c)
	}
}
