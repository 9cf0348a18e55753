package web

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestNodeTokenOpensMetricsOnly: another node's token (same signing key)
// reads /metrics, and nothing else; a forged or expired one reads nothing.
func TestNodeTokenOpensMetricsOnly(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	tok, err := f.svc.NodeToken(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	old, err := f.svc.NodeToken(time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	for _, tc := range []struct {
		method, target, tok string
		want                int
	}{
		{"GET", "/metrics", tok, http.StatusOK},
		{"GET", "/metrics", old, http.StatusUnauthorized},
		{"GET", "/metrics", tok[:len(tok)-2] + "AA", http.StatusUnauthorized},
		{"GET", "/admin", tok, http.StatusSeeOther}, // to the login page
		{"GET", "/api/libraries", tok, http.StatusUnauthorized},
		{"GET", "/stream/Music/a.mp3", tok, http.StatusUnauthorized},
		{"POST", "/admin/drain", tok, http.StatusUnauthorized},
	} {
		resp, body := send(t, f.srv, tc.method, tc.target, "drain=on", bearer(tc.tok))
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s with a node token: %s %q, want %d", tc.method, tc.target, resp.Status, body, tc.want)
		}
	}
}

// TestDrainForm: an admin's drain form turns the node's draining on and
// off, and the overview shows the node's state.
func TestDrainForm(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t)
	node := f.web.opts.Node.(*fakeNode)
	cookie := f.session(t, "root")
	resp, _ := f.post(t, "/admin/drain", "drain=on", cookie)
	if resp.StatusCode != http.StatusSeeOther || !node.Draining() {
		t.Fatalf("drain=on: %s, draining %v", resp.Status, node.Draining())
	}
	_, page := send(t, f.srv, "GET", "/admin?done=drain-on", "", http.Header{"Cookie": {sessionCookie + "=" + cookie}})
	if !strings.Contains(page, "node-a</strong>: not ready: draining") || !strings.Contains(page, "Take new streams again") {
		t.Errorf("the overview does not show the draining node:\n%s", page)
	}
	if resp, _ := f.post(t, "/admin/drain", "drain=maybe", cookie); resp.StatusCode != http.StatusBadRequest || !node.Draining() {
		t.Errorf("drain=maybe: %s, draining %v; want 400 and no change", resp.Status, node.Draining())
	}
	if resp, _ := f.post(t, "/admin/drain", "drain=off", cookie); resp.StatusCode != http.StatusSeeOther || node.Draining() {
		t.Errorf("drain=off: %s, draining %v", resp.Status, node.Draining())
	}
}
