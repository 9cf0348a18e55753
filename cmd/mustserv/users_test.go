package main

import (
	"bytes"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runCmd runs mustserv with args in-process and returns its outputs.
func runCmd(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(t.Context(), args, func(string) string { return "" }, &out, &errb)
	return out.String(), errb.String(), err
}

// passwordFile writes pw to a file for --password-file.
func passwordFile(t *testing.T, pw string) string {
	t.Helper()
	noteSecret(pw)
	p := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// login posts the login form and returns the session cookie, or "" with
// the status when it fails.
func login(t *testing.T, base, name, pw string) (string, int) {
	t.Helper()
	c := noRedirect
	resp, err := c.PostForm(base+"/login", url.Values{"name": {name}, "password": {pw}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	noteSecret(pw)
	for _, ck := range resp.Cookies() {
		if ck.Name == "mustserv_session" && ck.Value != "" {
			noteSecret(ck.Value)
			return ck.Value, resp.StatusCode
		}
	}
	return "", resp.StatusCode
}

// TestUserCommand manages accounts with `mustserv user` while a server
// runs on the same data folder: the server sees each change.
func TestUserCommand(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	music := t.TempDir()
	writeNoise(t, music, "a.mp3", 1000)
	s := startRun(t, nil, "--auth", "--listen", "127.0.0.1:0", "--data", data, music)
	if !regexp.MustCompile(`/setup\?token=[0-9a-f]{32}`).MatchString(s.Stdout.String()) {
		t.Errorf("no setup link printed on stdout:\n%s", s.Stdout)
	}
	lib := filepath.Base(music)

	out, _, err := runCmd(t, "user", "add", "alice", "--role", "admin", "--data", data, "--password-file", passwordFile(t, "alice's password"))
	if err != nil || !strings.Contains(out, "alice added (admin)") {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	if _, _, err := runCmd(t, "user", "add", "bob", "--data", data, "--library", lib, "--password-file", passwordFile(t, "short")); err == nil {
		t.Error("a 5-character password was accepted")
	}
	if _, _, err := runCmd(t, "user", "add", "bob", "--data", data, "--library", lib, "--password-file", passwordFile(t, "bob's password")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCmd(t, "user", "add", "BOB", "--data", data, "--password-file", passwordFile(t, "another password")); err == nil {
		t.Error("a second user named BOB (bob exists) was accepted")
	}
	out, _, err = runCmd(t, "user", "list", "--data", data)
	if err != nil || !regexp.MustCompile(`(?m)^alice\s+admin\s+\(all\)`).MatchString(out) || !regexp.MustCompile(`(?m)^bob\s+user\s+`+regexp.QuoteMeta(lib)).MatchString(out) {
		t.Errorf("user list: %v\n%s", err, out)
	}

	// The running server knows bob at once.
	bob, code := login(t, s.URL, "bob", "bob's password")
	if bob == "" {
		t.Fatalf("bob cannot sign in: %d", code)
	}
	me := func(cookie string) int {
		resp, _ := get(t, s.URL+"/api/me", "Cookie", "mustserv_session="+cookie)
		return resp.StatusCode
	}
	// A change by another process reaches the server within a second
	// (it looks at the store's data version at most once a second).
	meBecomes := func(cookie string, want int) int {
		deadline := time.Now().Add(3 * time.Second)
		for {
			c := me(cookie)
			if c == want || time.Now().After(deadline) {
				return c
			}
			time.Sleep(20 * time.Millisecond) // polling, bounded by the deadline
		}
	}
	if c := me(bob); c != http.StatusOK {
		t.Fatalf("/api/me as bob: %d", c)
	}
	// A new password ends bob's sessions; the old password stops working.
	if _, _, err := runCmd(t, "user", "passwd", "bob", "--data", data, "--password-file", passwordFile(t, "bob's new password")); err != nil {
		t.Fatal(err)
	}
	if c := meBecomes(bob, http.StatusUnauthorized); c != http.StatusUnauthorized {
		t.Errorf("bob's session after a new password: %d, want 401", c)
	}
	if tok, _ := login(t, s.URL, "bob", "bob's password"); tok != "" {
		t.Error("the old password still works")
	}
	bob, _ = login(t, s.URL, "bob", "bob's new password")
	if bob == "" {
		t.Fatal("the new password does not work")
	}

	// An API key works as bob until deleted.
	key, kerr, err := runCmd(t, "user", "key", "add", "bob", "script", "--data", data)
	key = strings.TrimSpace(key)
	noteSecret(key)
	if err != nil || !regexp.MustCompile(`^mk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$`).MatchString(key) {
		t.Fatalf("user key add: %v %q %s", err, key, kerr)
	}
	resp, _ := get(t, s.URL+"/api/me", "Authorization", "Bearer "+key)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("API key: %d", resp.StatusCode)
	}
	out, _, _ = runCmd(t, "user", "key", "list", "bob", "--data", data)
	id := regexp.MustCompile(`(?m)^([0-9a-f]{16})\s+bob\s+script`).FindStringSubmatch(out)
	if id == nil || strings.Contains(out, key) {
		t.Fatalf("user key list shows no key, or the secret:\n%s", out)
	}
	if _, _, err := runCmd(t, "user", "key", "del", "bob", id[1], "--data", data); err != nil {
		t.Fatal(err)
	}
	if resp, _ := get(t, s.URL+"/api/me", "Authorization", "Bearer "+key); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("deleted API key: %d, want 401", resp.StatusCode)
	}

	// Deleting bob ends his session.
	if _, _, err := runCmd(t, "user", "del", "bob", "--data", data); err != nil {
		t.Fatal(err)
	}
	if c := meBecomes(bob, http.StatusUnauthorized); c != http.StatusUnauthorized {
		t.Errorf("deleted bob's session: %d, want 401", c)
	}
	if _, _, err := runCmd(t, "user", "del", "bob", "--data", data); err == nil {
		t.Error("deleting bob twice succeeded")
	}
	// Usage mistakes are exit status 2.
	for _, args := range [][]string{{"user"}, {"user", "frob"}, {"user", "add"}, {"user", "key", "add", "alice"}} {
		if _, _, err := runCmd(t, append(args, "--data", data)...); exitCode(err) != 2 {
			t.Errorf("%q: %v (exit %d), want a usage error", args, err, exitCode(err))
		}
	}
}

// TestListenDefault: without --listen the server serves loopback until
// an account exists, then every interface.
func TestListenDefault(t *testing.T) {
	// Not parallel: it needs port 8000.
	if ln, err := net.Listen("tcp", ":8000"); err != nil {
		t.Skipf("port 8000 is taken: %v", err)
	} else {
		ln.Close()
	}
	data := t.TempDir()
	s := startRun(t, nil, "--auth", "--data", data)
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:8000") {
		t.Errorf("no accounts: serving at %s, want 127.0.0.1:8000", s.URL)
	}
	s.Stop(t)
	if _, _, err := runCmd(t, "user", "add", "root", "--role", "admin", "--data", data, "--password-file", passwordFile(t, "root password")); err != nil {
		t.Fatal(err)
	}
	s = startRun(t, nil, "--auth", "--data", data)
	// displayAddr shows an unspecified address as localhost.
	if !strings.HasPrefix(s.URL, "http://localhost:8000") {
		t.Errorf("with an account: serving at %s, want every interface (localhost:8000)", s.URL)
	}
}

// TestUserCommandReadsDataConfig: like serve, `mustserv user` reads the
// data folder's mustserv.toml (written by the admin pages), so it manages
// the accounts the server uses.
func TestUserCommandReadsDataConfig(t *testing.T) {
	t.Parallel()
	data, other := t.TempDir(), t.TempDir()
	cfg := "[auth]\nstate_file = " + tomlString(filepath.Join(other, "state.db")) +
		"\nkey_file = " + tomlString(filepath.Join(other, "signing.keys")) + "\n"
	if err := os.WriteFile(filepath.Join(data, configFile), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCmd(t, "user", "add", "ann", "--data", data, "--password-file", passwordFile(t, "ann's password")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(other, "state.db")); err != nil {
		t.Errorf("the accounts are not where the data folder's config puts them: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, stateFile)); err == nil {
		t.Error("a second state.db was made in the data folder")
	}
}
