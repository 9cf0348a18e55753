package httporigin

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"mustserv/internal/testenv"
)

// startNginx serves root with nginx in the foreground and returns its base
// URL once it accepts connections. /json/ lists folders with
// autoindex_format json, /html/ with nginx's default HTML index; both
// serve the same files.
func startNginx(t *testing.T, root string) string {
	t.Helper()
	bin := "/usr/sbin/nginx"
	if _, err := os.Stat(bin); err != nil {
		bin = testenv.NeedTool(t, "nginx")
	}
	// The free port may be taken between our probe and nginx's bind:
	// then nginx exits, and we try another.
	for try := 1; ; try++ {
		addr, err := startNginxOn(t, bin, t.TempDir(), root)
		if err == nil {
			return "http://" + addr
		}
		if try == 3 {
			t.Fatal(err)
		}
		t.Log(err)
	}
}

// startNginxOn starts nginx on a free loopback port with its files in dir,
// and waits until it accepts connections, or exits.
func startNginxOn(t *testing.T, bin, dir, root string) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	conf := fmt.Sprintf(`master_process off;
error_log %[1]s/error.log warn;
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
		t.Fatal(err)
	}
	out := new(bytes.Buffer)
	cmd := exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", confPath,
		"-g", fmt.Sprintf("daemon off; pid %s;", filepath.Join(dir, "nginx.pid")))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Connecting is the readiness check: a bounded poll, as for any
	// server started as a process.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return "", fmt.Errorf("nginx exited (%v): %s%s", err, out, log)
		case <-deadline:
			cmd.Process.Kill()
			<-exited
			t.Fatalf("nginx did not listen on %s in 10 s: %s", addr, out)
		case <-tick.C:
		}
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx output:\n%s\nerror.log:\n%s", out, log)
		}
	})
	return addr, nil
}

// writeTree writes files (slash-separated names) below root.
func writeTree(t *testing.T, root string, files map[string][]byte) {
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
