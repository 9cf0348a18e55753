package origins

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mustserv/internal/testenv"
)

// Region is the region versitygw answers for (its default).
const Region = "us-east-1"

// VersityOptions configures NewVersity; the zero value is a gateway with
// random root keys and path-style addressing only.
type VersityOptions struct {
	// AccessKey and SecretKey are the root account's keys: random when
	// empty.
	AccessKey, SecretKey string
	// VirtualDomain, when set, also serves virtual-host style requests
	// (bucket.VirtualDomain).
	VirtualDomain string
	// Host is the IP address the gateway listens on, 127.0.0.1 when
	// empty: another address of the test's namespace, such as a
	// netns.Net's Host, lets processes in other network namespaces reach
	// it.
	Host string
}

// Versity is a running versitygw with its posix backend: bucket b is the
// folder Root/b and object k the file Root/b/k.
type Versity struct {
	Endpoint  string // "http://host:port", host being VersityOptions.Host
	Addr      string // "host:port"
	AccessKey string
	SecretKey string
	Root      string
	Startup   time.Duration // from start until it answered

	dir  string // Root and the folder for files being written
	proc *process
}

// StartVersity starts a versitygw with random root keys for t, stopped
// when t ends. Without versitygw the test is skipped (failed in CI).
func StartVersity(t testing.TB) *Versity {
	t.Helper()
	v, err := NewVersity(testenv.NeedTool(t, "versitygw"), VersityOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

// NewVersity starts the versitygw program bin on a free port of opt.Host
// (127.0.0.1 by default) and returns once it answers HTTP. Close stops it:
// this is for a gateway that outlives one test (shared by a test binary).
func NewVersity(bin string, opt VersityOptions) (*Versity, error) {
	host := opt.Host
	if host == "" {
		host = "127.0.0.1"
	}
	if net.ParseIP(host) == nil {
		return nil, fmt.Errorf("versitygw: Host %q is not an IP address", host)
	}
	dir, err := os.MkdirTemp("", "mustserv-versity-*")
	if err != nil {
		return nil, err
	}
	v := &Versity{AccessKey: opt.AccessKey, SecretKey: opt.SecretKey, Root: filepath.Join(dir, "data"), dir: dir}
	if v.AccessKey == "" {
		v.AccessKey, v.SecretKey = rand.Text(), rand.Text()
	}
	for _, d := range []string{v.Root, filepath.Join(dir, "tmp")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	// A port free on the loopback address is almost always free on host
	// too; when it is not, versitygw exits and onFreePort tries another.
	err = onFreePort(func(loopback string) error {
		_, port, err := net.SplitHostPort(loopback)
		if err != nil {
			return err
		}
		return v.launch(bin, net.JoinHostPort(host, port), opt.VirtualDomain)
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("versitygw: %w", err)
	}
	return v, nil
}

// launch runs versitygw on addr and waits until it answers.
func (v *Versity) launch(bin, addr, virtualDomain string) error {
	began := time.Now()
	args := []string{"--port", addr, "--quiet"}
	if virtualDomain != "" {
		args = append(args, "--virtual-domain", virtualDomain)
	}
	p, err := launch(bin, append(args, "posix", v.Root),
		[]string{"ROOT_ACCESS_KEY=" + v.AccessKey, "ROOT_SECRET_KEY=" + v.SecretKey})
	if err != nil {
		return err
	}
	endpoint := "http://" + addr
	// Any answer will do: an unsigned request is refused with 403.
	err = p.waitUntil(30*time.Second, func() error {
		resp, err := http.Get(endpoint + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err
	})
	if err != nil {
		return err
	}
	v.Endpoint, v.Addr, v.proc, v.Startup = endpoint, addr, p, time.Since(began)
	return nil
}

// Close stops the gateway and removes its folder.
func (v *Versity) Close() {
	if v.proc != nil {
		v.proc.stop()
	}
	os.RemoveAll(v.dir)
}

// URL is the s3:// URL of a library at bucket/prefix on the gateway, as
// mustserv's configuration and s3.New take it.
func (v *Versity) URL(bucket, prefix string) string {
	u := url.URL{Scheme: "s3", Host: bucket, Path: "/" + prefix,
		RawQuery: url.Values{"endpoint": {v.Endpoint}, "region": {Region}}.Encode()}
	return u.String()
}

// Bucket makes the bucket name (a folder of Root, which is what the posix
// backend's CreateBucket makes; the root account owns every bucket).
func (v *Versity) Bucket(t testing.TB, name string) string {
	t.Helper()
	if err := os.Mkdir(filepath.Join(v.Root, name), 0o755); err != nil {
		t.Fatal(err)
	}
	return name
}

// PutFiles stores files (names relative to prefix → contents) in bucket.
func (v *Versity) PutFiles(t testing.TB, bucket, prefix string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		v.Put(t, bucket, strings.TrimPrefix(prefix+"/"+name, "/"), data)
	}
}

// Put stores data as object key of bucket, replacing any object there.
//
// It writes the file as the posix backend's PutObject does, without a
// signed PUT (SigV4 lives unexported in internal/storage/s3): the file
// Root/bucket/key, renamed into place whole, with the xattr user.etag
// holding the quoted MD5 of the data, which is what versitygw answers as
// the ETag (of HEAD, GET and listings). Without that attribute it
// serves the file with no ETag at all, unlike any S3. Last-Modified is
// the file's mtime. TestVersityPutIsAnObject checks all of this through
// the s3 backend and the storage conformance suite.
func (v *Versity) Put(t testing.TB, bucket, key string, data []byte) {
	t.Helper()
	if err := v.put(bucket, key, data); err != nil {
		t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
}

// put is Put returning its error.
func (v *Versity) put(bucket, key string, data []byte) error {
	p := filepath.Join(v.Root, bucket, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Join(v.dir, "tmp"), "put-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after the rename: there is nothing left to remove
	sum := md5.Sum(data)
	etag := `"` + hex.EncodeToString(sum[:]) + `"`
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := unix.Setxattr(f.Name(), "user.etag", []byte(etag), 0); err != nil {
		return fmt.Errorf("the ETag attribute: %w", err)
	}
	return os.Rename(f.Name(), p)
}
