package origins

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"mustserv/internal/testenv"
)

// StartNginx serves the folder root with nginx and returns its base URL
// ("http://127.0.0.1:port") once it accepts connections. Below /json/ it
// lists folders with `autoindex_format json`, below /html/ with nginx's
// HTML index; both serve the same files, with nginx's own ETag
// (mtime-size) and Range support. Its configuration, pid file and logs
// are in a temporary folder; it is stopped when t ends, and its logs are
// shown if t failed.
func StartNginx(t testing.TB, root string) string {
	t.Helper()
	bin := "/usr/sbin/nginx" // not on a non-root user's PATH on Debian
	if _, err := os.Stat(bin); err != nil {
		bin = testenv.NeedTool(t, "nginx")
	}
	var base string
	err := onFreePort(func(addr string) error {
		p, err := startNginx(bin, t.TempDir(), root, addr)
		if err != nil {
			return err
		}
		t.Cleanup(func() {
			if out := p.stop(); t.Failed() {
				t.Logf("nginx output and error log:\n%s", out)
			}
		})
		base = "http://" + addr
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return base
}

// startNginx runs nginx in the foreground on addr with its files in dir,
// and waits until it accepts connections.
func startNginx(bin, dir, root, addr string) (*process, error) {
	// The error log goes to stderr (kept by process) as well as to the
	// file nginx opens before reading its configuration.
	conf := fmt.Sprintf(`master_process off;
error_log stderr warn;
events { worker_connections 256; }
http {
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    server {
        listen %[2]s;
        location /json/ { alias %[3]s/; autoindex on; autoindex_format json; }
        location /html/ { alias %[3]s/; autoindex on; autoindex_format html; }
    }
}
`, dir, addr, root)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := launch(bin, []string{"-p", dir, "-e", "stderr", "-c", confPath,
		"-g", fmt.Sprintf("daemon off; pid %s;", filepath.Join(dir, "nginx.pid"))}, nil)
	if err != nil {
		return nil, err
	}
	if err := p.waitUntil(10*time.Second, dialable(addr)); err != nil {
		return nil, err
	}
	return p, nil
}

// WriteTree writes files (slash-separated names → contents) below root,
// making the folders they need.
func WriteTree(t testing.TB, root string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
