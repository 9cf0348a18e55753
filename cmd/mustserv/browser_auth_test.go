package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
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
	browser := needBrowser(t)
	artifacts := browserArtifacts(t, "artifacts-auth", "browser-auth")

	// key_overlap is what auth.mjs expects (overlapMs); shutdown_grace:
	// the scenario's streams need not be waited for at cleanup.
	conf := writeConfig(t, "[server]\nshutdown_grace = \"1s\"\n\n[auth]\nkey_overlap = \"3s\"\n")
	s := startServer(t, "--auth", "--config", conf, filepath.Join(mediaDir, "Music"), filepath.Join(mediaDir, "Videos"))
	m := regexp.MustCompile(`no users yet: create the administrator at (https?://\S+/setup\?token=[0-9a-f]+)`).FindStringSubmatch(s.Stdout.String())
	if m == nil {
		t.Fatalf("no setup link on stdout:\n%s", s.Stdout)
	}
	setupURL := m[1]

	out := browser.run(t, s, 90*time.Second, "auth.mjs", s.URL, setupURL, artifacts)

	var secrets struct {
		Passwords, Sessions, Tokens []string
	}
	_, line, ok := strings.Cut(out, "\nSECRETS ")
	if !ok {
		t.Fatalf("the scenario printed no SECRETS line:\n%s", out)
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
