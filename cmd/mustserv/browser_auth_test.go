package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"mustserv/internal/testenv"
)

// TestBrowserAuth is issue 6's accounts in headless Chromium: the scenario
// in test/browser/auth.mjs makes the first administrator through the setup
// link the server printed, creates a user of the library Videos only, signs
// in as that user, who sees and plays Videos and gets 404 for Music, and
// whose playlist's signed links play without cookies; then the
// administrator rotates the signing key and an old link keeps working for
// the configured overlap (3 s), then answers 403, while a new playlist's
// link works. This test gives it the server and then checks the server's
// log for what the scenario reports it typed and was given: passwords,
// session cookies, link and setup tokens must not be there.
//
// Like TestBrowser it does not run in parallel (Chromium keeps both cores
// busy).
func TestBrowserAuth(t *testing.T) {
	chromium := testenv.NeedTool(t, "chromium")
	node := testenv.NeedTool(t, "node")
	if _, err := os.Stat(filepath.Join(browserDir, "node_modules", "playwright-core", "package.json")); err != nil {
		if testenv.InCI() {
			t.Fatalf("playwright-core is required in CI (.ci/run runs npm ci --prefix test/browser): %v", err)
		}
		t.Skipf("playwright-core not installed (npm ci --prefix test/browser): %v", err)
	}
	artifacts := browserAuthArtifacts(t)

	// key_overlap is what auth.mjs expects (overlapMs); shutdown_grace:
	// the scenario's streams need not be waited for at cleanup.
	conf := writeConfig(t, "[server]\nshutdown_grace = \"1s\"\n\n[auth]\nkey_overlap = \"3s\"\n")
	s := startServer(t, "--auth", "--config", conf, filepath.Join(mediaDir, "Music"), filepath.Join(mediaDir, "Videos"))
	m := regexp.MustCompile(`no users yet: create the administrator at (https?://\S+/setup\?token=[0-9a-f]+)`).FindStringSubmatch(s.Stdout.String())
	if m == nil {
		t.Fatalf("no setup link on stdout:\n%s", s.Stdout)
	}
	setupURL := m[1]

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, node, filepath.Join(browserDir, "auth.mjs"), s.URL, setupURL, artifacts)
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	t.Logf("scenario took %v; screenshots in %s", time.Since(start).Round(time.Millisecond), artifacts)
	if err != nil {
		t.Fatalf("node auth.mjs: %v\n%s\nserver log (tail):\n%s", err, out.String(), tail(s.Stderr.String(), 6000))
	}
	t.Logf("scenario output:\n%s", out.String())

	var secrets struct {
		Passwords, Sessions, Tokens []string
	}
	_, line, ok := strings.Cut(out.String(), "\nSECRETS ")
	if !ok {
		t.Fatalf("the scenario printed no SECRETS line:\n%s", out.String())
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(line)), &secrets); err != nil {
		t.Fatalf("the scenario's SECRETS line: %v\n%s", err, line)
	}
	// The scenario typed two passwords, signed in four times and used
	// the setup token and at least one link from each side of the
	// rotation: fewer means it reported less than it did.
	if len(secrets.Passwords) != 2 || len(secrets.Sessions) < 4 || len(secrets.Tokens) < 3 {
		t.Fatalf("the scenario reported %d passwords, %d sessions, %d tokens; want 2, ≥4, ≥3",
			len(secrets.Passwords), len(secrets.Sessions), len(secrets.Tokens))
	}

	// Stop the server so that every request's log line is written, then
	// make sure the log is the one that saw the scenario: it holds the old
	// link's 200 and its 403 after the rotation.
	s.Stop(t)
	log := s.Stderr.String()
	var linkOK, linkRefused bool
	for _, l := range parseAccessLog(log) {
		if l.Method == http.MethodGet && l.Path == "/stream/Videos/clip.mp4" {
			linkOK = linkOK || l.Status == http.StatusOK
			linkRefused = linkRefused || l.Status == http.StatusForbidden
		}
	}
	if !linkOK || !linkRefused {
		t.Fatalf("the server's log lacks the signed link's 200 (%v) or 403 (%v):\n%s", linkOK, linkRefused, tail(log, 6000))
	}

	// A secret may show whole or, for a token, its signature alone (the
	// last of its dot-separated parts), raw or URL-encoded.
	type secret struct{ kind, value string }
	var all []secret
	for _, p := range secrets.Passwords {
		all = append(all, secret{"password", p})
	}
	for _, c := range secrets.Sessions {
		all = append(all, secret{"session cookie", c}, secret{"session cookie's signature", c[strings.LastIndexByte(c, '.')+1:]})
	}
	for _, tok := range secrets.Tokens {
		all = append(all, secret{"token", tok})
		if i := strings.LastIndexByte(tok, '.'); i >= 0 {
			all = append(all, secret{"token's signature", tok[i+1:]})
		}
	}
	for _, sc := range all {
		if len(sc.value) < 8 {
			t.Fatalf("the scenario reported a %s of %d characters: too short to look for", sc.kind, len(sc.value))
		}
		for _, v := range slices.Compact([]string{sc.value, url.QueryEscape(sc.value)}) {
			if i := strings.Index(log, v); i >= 0 {
				t.Errorf("the server's log holds a %s: …%s…", sc.kind, log[max(0, i-200):min(len(log), i+len(v)+50)])
			}
		}
	}
}

// browserAuthArtifacts returns the folder for TestBrowserAuth's screenshots:
// $MUSTSERV_ARTIFACTS/browser-auth when set, else
// test/browser/artifacts-auth (which git ignores), emptied first: apart
// from TestBrowser's folder, which that test empties.
func browserAuthArtifacts(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(browserDir, "artifacts-auth")
	if a := os.Getenv("MUSTSERV_ARTIFACTS"); a != "" {
		dir = filepath.Join(a, "browser-auth")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
