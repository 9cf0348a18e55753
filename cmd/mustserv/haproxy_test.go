package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"mustserv/internal/testenv"
)

// TestHAProxyConfig: the printed configuration is one HAProxy itself
// accepts (haproxy -c) for every algorithm, with each node's weight and
// address, /readyz checks for streams and /healthz for pages.
func TestHAProxyConfig(t *testing.T) {
	t.Parallel()
	bin := testenv.NeedTool(t, "haproxy")
	for _, balance := range []string{"leastconn", "roundrobin", "weighted", "random"} {
		out, _, err := runCmd(t, "haproxy-config", "--balance", balance, "--listen", "127.0.0.1:9080",
			"--node", "http://10.0.0.1:8000=2", "--node", "http://[fd00::2]:8000/", "--node", "https://media.example:8443=3")
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"leastconn": "leastconn", "roundrobin": "roundrobin", "weighted": "roundrobin", "random": "random"}[balance]
		for _, re := range []string{
			`(?m)^    bind 127\.0\.0\.1:9080$`,
			`(?m)^backend streams\n    balance ` + want + `\n    option httpchk GET /readyz$`,
			`(?m)^backend pages\n    balance ` + want + `\n    option httpchk GET /readyz\?for=pages$`,
			`(?m)^backend alive\n    option httpchk GET /healthz$`,
			`(?m)^    server node1 10\.0\.0\.1:8000 check weight 2$`,
			`(?m)^    server node2 \[fd00::2\]:8000 check weight 1$`,
			`(?m)^    server node3 media\.example:8443 check weight 3 ssl verify required .* sni str\(media\.example\)`,
			`(?m)^    use_backend streams if \{ path_beg /stream/ \}$`,
			`(?m)^    http-request del-header X-Forwarded-Host$`,
			`(?m)^    option allbackups$`,
			`(?m)^    server node1-live 10\.0\.0\.1:8000 backup track alive/node1 weight 2$`,
		} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("%s: the configuration does not match %s:\n%s", balance, re, out)
			}
		}
		if n := strings.Count(out, "server node"); n != 15 {
			t.Errorf("%s: %d server lines, want 3 nodes and their backups in 2 backends, and 3 checked for life", balance, n)
		}
		cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
		if err := os.WriteFile(cfg, []byte(out), 0o600); err != nil {
			t.Fatal(err)
		}
		// -c checks without starting; the https node's name need not resolve
		// for the check (init-addr would), so it is replaced by an address.
		data := strings.ReplaceAll(out, "media.example:8443", "10.0.0.3:8443")
		if err := os.WriteFile(cfg, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if b, err := exec.Command(bin, "-c", "-f", cfg).CombinedOutput(); err != nil {
			t.Errorf("%s: haproxy -c refuses the configuration: %v\n%s", balance, err, b)
		}
	}
}

func TestHAProxyConfigRefuses(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{},
		{"--node", "10.0.0.1:8000"},
		{"--node", "http://10.0.0.1:8000/mustserv/"},
		{"--node", "http://10.0.0.1:8000?x=1"},
		{"--node", "http://10.0.0.1:8000=0"},
		{"--node", "http://10.0.0.1:8000=heavy"},
		{"--node", "http://10.0.0.1:8000", "--balance", "source"},
		{"--node", "http://10.0.0.1:8000", "--check-interval", "1ms"},
		{"--node", "http://10.0.0.1:8000", "--listen", "8000"},
		{"--node", "http://10.0.0.1:8000", "extra"},
	} {
		out, _, err := runCmd(t, append([]string{"haproxy-config"}, args...)...)
		if err == nil || exitCode(err) != 2 || out != "" {
			t.Errorf("haproxy-config %q: err %v (exit %d), output %q; want a usage error and no output", args, err, exitCode(err), out)
		}
	}
}
