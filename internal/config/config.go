// Package config defines MuStServ's configuration: the Config struct, its
// defaults, strict TOML loading (an unknown key is an error with file:line),
// validation, and the few environment overrides (MUSTSERV_*).
//
// It does not read flags (cmd/mustserv does) and holds no global state: run
// builds one Config and passes the parts each component needs.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Config is the whole configuration. The zero value is not useful; start
// from Default.
type Config struct {
	Server    Server    `toml:"server"`
	Log       Log       `toml:"log"`
	Pace      Pace      `toml:"pace"`
	Scan      Scan      `toml:"scan"`
	Storage   Storage   `toml:"storage"`
	Auth      Auth      `toml:"auth"`
	TLS       TLS       `toml:"tls"`
	Cluster   Cluster   `toml:"cluster"`
	Libraries []Library `toml:"library,omitempty"` // omitempty: Save writes no "library = []"
}

// Auth holds the settings of accounts, sessions and signed links.
type Auth struct {
	// Mode is "accounts" (every request but health checks, login and
	// signed links needs a user) or "none" (anyone may do anything: for
	// trusted networks and tests).
	Mode string `toml:"mode"`
	// SessionTTL is how long a login lasts without use; a session used
	// after half of it is renewed.
	SessionTTL Duration `toml:"session_ttl"`
	// LinkTTL is how long a signed stream link (in a playlist) works.
	LinkTTL Duration `toml:"link_ttl"`
	// KeyOverlap is how long links and sessions signed with a replaced
	// key keep working after a rotation.
	KeyOverlap Duration `toml:"key_overlap"`
	// KeyFile holds the signing keys; empty means keys in data_dir.
	// Nodes behind one load balancer point at one shared file.
	KeyFile string `toml:"key_file"`
	// StateFile is the accounts database; empty means state.db in
	// data_dir. Nodes on one machine (or one local disk) may share it.
	StateFile string `toml:"state_file"`
	// StateURL, if set, is where nodes on several machines keep the
	// accounts: an S3 object ("s3://bucket/key?endpoint=&region=") that
	// each node copies into its state_file and writes back with
	// conditional PUTs. StateAccessKey and StateSecretKey sign its
	// requests (empty: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
	StateURL       string `toml:"state_url"`
	StateAccessKey string `toml:"state_access_key"`
	StateSecretKey string `toml:"state_secret_key"`
}

// AuthNone is Auth.Mode for a server without accounts.
const AuthNone = "none"

// TLS holds the settings of HTTPS.
type TLS struct {
	// Cert and Key are PEM files; both empty means plain HTTP.
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
	// HSTS sends Strict-Transport-Security on HTTPS responses.
	HSTS bool `toml:"hsts"`
}

// Storage holds the settings of libraries that are not on this machine.
type Storage struct {
	// Timeout bounds each listing or metadata request to an origin, and
	// how long a file's bytes may stop coming.
	Timeout Duration `toml:"timeout"`
	// ReadAhead is how far a stream reads ahead of its player, in bytes.
	ReadAhead int64 `toml:"read_ahead"`
	// CacheSize bounds the on-disk cache of remote files' ranges, in
	// bytes; 0 turns it off. The cache is the folder range-cache in
	// data_dir, or CacheDir.
	CacheSize int64  `toml:"cache_size"`
	CacheDir  string `toml:"cache_dir"`
}

// Cluster holds what a node behind a load balancer needs to know of
// itself and of the other nodes (docs/deploy.md). A single server leaves
// it empty.
type Cluster struct {
	// Name names this node on the admin page (and its drain form); empty
	// means the host name.
	Name string `toml:"name"`
	// URL is where clients reach this node directly, past the balancer:
	// where the other nodes send the streams they cannot take (their
	// peers list it). Placement needs it, so that the node's own address
	// is known not to be one of its peers.
	URL string `toml:"url"`
	// Peers are the other nodes' URLs (their own, not the balancer's).
	Peers []string `toml:"peers"`
	// Placement redirects (307) a new stream that this node's uplink
	// budget cannot take to a peer with room (cluster.Cluster.Pick).
	Placement bool `toml:"placement"`
	// Direct redirects (307) every stream request that came through a
	// trusted proxy (the balancer) to this node's own URL, so that the
	// stream's bytes go from the node to the player, not through the
	// balancer, which then carries one small request per stream.
	Direct bool `toml:"direct"`
	// Poll is how often the peers' free uplink is read.
	Poll Duration `toml:"poll"`
	// DrainDelay is how long after SIGTERM /readyz answers 503 while the
	// node still takes requests, so that balancers stop sending before
	// the listener closes. Running streams then get shutdown_grace.
	DrainDelay Duration `toml:"drain_delay"`
}

// Scan holds the library scanner's settings.
type Scan struct {
	// Watch follows changes in the libraries' folders as they happen.
	Watch bool `toml:"watch"`
	// Interval between full rescans; 0 turns them off.
	Interval Duration `toml:"interval"`
	// Workers probe files in parallel; 0 means one per CPU (at least 2).
	Workers int `toml:"workers"`
}

// Server holds the HTTP server's settings.
type Server struct {
	// Listen is the TCP address to listen on. Empty means 127.0.0.1:8000
	// until accounts exist, then :8000 (ListenAddr).
	Listen string `toml:"listen"`
	// DataDir holds the server's state; empty means the user's data
	// directory ($XDG_DATA_HOME/mustserv or ~/.local/share/mustserv).
	DataDir string `toml:"data_dir"`
	// TrustedProxies lists the addresses (IPs or CIDRs) whose
	// X-Forwarded-For/-Proto/-Host headers are believed.
	TrustedProxies []string `toml:"trusted_proxies"`
	// ReadHeaderTimeout bounds how long a client may take to send headers.
	ReadHeaderTimeout Duration `toml:"read_header_timeout"`
	// IdleTimeout closes keep-alive connections idle for this long.
	IdleTimeout Duration `toml:"idle_timeout"`
	// WriteStall cuts a response whose client accepts no bytes for this
	// long. There is no overall write timeout: streams may run for hours.
	WriteStall Duration `toml:"write_stall"`
	// ShutdownGrace is how long running streams may go on after SIGTERM.
	ShutdownGrace Duration `toml:"shutdown_grace"`
	// MaxHeaderBytes caps the size of a request's headers.
	MaxHeaderBytes int `toml:"max_header_bytes"`
}

// Log holds logging settings.
type Log struct {
	// Level is one of debug, info, warn, error.
	Level string `toml:"level"`
	// Access turns the per-request access log on or off.
	Access bool `toml:"access"`
}

// Library is one named root of media files.
type Library struct {
	// Name is the first segment of the library's virtual paths.
	Name string `toml:"name"`
	// Path is the folder on disk (or a share mounted on it). A library
	// has a path or a URL.
	Path string `toml:"path"`
	// URL is where a library that is not on this machine lives:
	// "http(s)://host/folder/" (an HTTP file server with an index
	// page: nginx or Apache autoindex, another MuStServ's
	// /stream/<library>/) or "s3://bucket/prefix?endpoint=&region=".
	// Credentials in an http URL ("http://user:pass@host/") are sent
	// as Basic auth.
	URL string `toml:"url,omitempty"`
	// Token is sent as "Authorization: Bearer <token>" to an http
	// origin: another MuStServ's API key.
	Token string `toml:"token,omitempty"`
	// AccessKey and SecretKey sign requests to an s3 library; empty
	// means the environment's (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
	AccessKey string `toml:"access_key,omitempty"`
	SecretKey string `toml:"secret_key,omitempty"`
	// Redirect sends players of an s3 library's files to a short-lived
	// presigned URL of the bucket instead of relaying the bytes: no
	// uplink used here, but no pacing either (the bucket serves at
	// full speed).
	Redirect bool `toml:"redirect,omitempty"`
	// Dotfiles serves and lists names that start with a dot.
	Dotfiles bool `toml:"dotfiles"`
	// Pace overrides [pace] keys for this library's files.
	Pace *PaceOverride `toml:"pace,omitempty"`
}

// Default returns the configuration used when a key is not set. It must
// match the shipped mustserv.example.toml (a test checks).
func Default() Config {
	return Config{
		Server: Server{
			Listen:            "",
			DataDir:           "",
			TrustedProxies:    []string{},
			ReadHeaderTimeout: Duration(10 * time.Second),
			IdleTimeout:       Duration(120 * time.Second),
			WriteStall:        Duration(60 * time.Second),
			ShutdownGrace:     Duration(30 * time.Second),
			MaxHeaderBytes:    64 << 10,
		},
		Log: Log{
			Level:  "info",
			Access: true,
		},
		Pace: Pace{
			Enabled:     true,
			Factor:      1.25,
			Burst:       Duration(8 * time.Second),
			Window:      Duration(4 * time.Second),
			UnknownRate: 8_000_000,
			OnFull:      "reject",
		},
		Scan: Scan{
			Watch:    true,
			Interval: Duration(6 * time.Hour),
			Workers:  0,
		},
		Storage: Storage{
			Timeout:   Duration(15 * time.Second),
			ReadAhead: 4 << 20,
			CacheSize: 0,
			CacheDir:  "",
		},
		Auth: Auth{
			Mode:           "accounts",
			SessionTTL:     Duration(30 * 24 * time.Hour),
			LinkTTL:        Duration(7 * 24 * time.Hour),
			KeyOverlap:     Duration(time.Hour),
			KeyFile:        "",
			StateFile:      "",
			StateURL:       "",
			StateAccessKey: "",
			StateSecretKey: "",
		},
		TLS: TLS{},
		Cluster: Cluster{
			Name:       "",
			URL:        "",
			Peers:      []string{},
			Placement:  false,
			Direct:     false,
			Poll:       Duration(time.Second),
			DrainDelay: 0,
		},
		Libraries: []Library{},
	}
}

// ListenAddr is the address to listen on: Listen, or when it is empty the
// loopback address until there are accounts to protect the server, then
// every interface.
func (c *Config) ListenAddr(haveAccounts bool) string {
	switch {
	case c.Server.Listen != "":
		return c.Server.Listen
	case haveAccounts && c.Auth.Mode != AuthNone:
		return ":8000"
	}
	return "127.0.0.1:8000"
}

//go:embed example.toml
var example []byte

// Example returns the commented example configuration, which equals the
// defaults.
func Example() []byte { return bytes.Clone(example) }

// Load reads the TOML file at path on top of the defaults and validates the
// result. Unknown keys are errors that name the file and line.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes data (named name in errors) on top of the defaults and
// validates the result.
func Parse(name string, data []byte) (Config, error) {
	c := Default()
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, decodeError(name, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// decodeError turns go-toml's errors into "file:line:col: message" lines.
func decodeError(name string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var msgs []string
		for _, e := range strict.Errors {
			row, col := e.Position()
			msgs = append(msgs, fmt.Sprintf("%s:%d:%d: unknown key %q", name, row, col, strings.Join(e.Key(), ".")))
		}
		return errors.New(strings.Join(msgs, "\n"))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		return fmt.Errorf("%s:%d:%d: %s", name, row, col, de.Error())
	}
	return fmt.Errorf("%s: %w", name, err)
}

// ApplyEnv overrides keys from MUSTSERV_LISTEN, MUSTSERV_DATA_DIR and
// MUSTSERV_LOG_LEVEL when they are set and not empty.
func (c *Config) ApplyEnv(getenv func(string) string) {
	if v := getenv("MUSTSERV_LISTEN"); v != "" {
		c.Server.Listen = v
	}
	if v := getenv("MUSTSERV_DATA_DIR"); v != "" {
		c.Server.DataDir = v
	}
	if v := getenv("MUSTSERV_LOG_LEVEL"); v != "" {
		c.Log.Level = v
	}
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	s := c.Server
	if s.Listen != "" {
		if _, _, err := net.SplitHostPort(s.Listen); err != nil {
			return fmt.Errorf("server.listen %q: %w", s.Listen, err)
		}
	}
	for _, p := range s.TrustedProxies {
		if _, err := ParsePrefix(p); err != nil {
			return fmt.Errorf("server.trusted_proxies: %w", err)
		}
	}
	for key, d := range map[string]Duration{
		"server.read_header_timeout": s.ReadHeaderTimeout,
		"server.idle_timeout":        s.IdleTimeout,
		"server.write_stall":         s.WriteStall,
	} {
		if d <= 0 {
			return fmt.Errorf("%s must be positive, got %s", key, d)
		}
	}
	if s.ShutdownGrace < 0 {
		return fmt.Errorf("server.shutdown_grace must not be negative, got %s", s.ShutdownGrace)
	}
	if s.MaxHeaderBytes < 4096 {
		return fmt.Errorf("server.max_header_bytes must be at least 4096, got %d", s.MaxHeaderBytes)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level %q: want debug, info, warn or error", c.Log.Level)
	}
	if err := validatePace("pace", c.Pace); err != nil {
		return err
	}
	if c.Storage.Timeout <= 0 {
		return fmt.Errorf("storage.timeout must be positive, got %s", c.Storage.Timeout)
	}
	if c.Storage.ReadAhead < 64<<10 || c.Storage.ReadAhead > 256<<20 {
		return fmt.Errorf("storage.read_ahead must be 65536 to 268435456 bytes, got %d", c.Storage.ReadAhead)
	}
	if c.Storage.CacheSize < 0 {
		return fmt.Errorf("storage.cache_size must not be negative, got %d", c.Storage.CacheSize)
	}
	if c.Scan.Interval < 0 {
		return fmt.Errorf("scan.interval must not be negative, got %s", c.Scan.Interval)
	}
	if c.Scan.Workers < 0 || c.Scan.Workers > 256 {
		return fmt.Errorf("scan.workers must be 0 (one per CPU) to 256, got %d", c.Scan.Workers)
	}
	if err := c.validateAuth(); err != nil {
		return err
	}
	if err := c.Cluster.validate(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, l := range c.Libraries {
		if err := ValidName(l.Name); err != nil {
			return fmt.Errorf("library[%d].name: %w", i, err)
		}
		if seen[l.Name] {
			return fmt.Errorf("library[%d].name %q is used twice", i, l.Name)
		}
		seen[l.Name] = true
		if err := l.validateStorage(); err != nil {
			return fmt.Errorf("library %q: %w", l.Name, err)
		}
		if l.Pace != nil {
			if err := validatePace(fmt.Sprintf("library %q: pace", l.Name), c.PaceFor(l.Name)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Config) validateAuth() error {
	a := c.Auth
	if a.Mode != "accounts" && a.Mode != AuthNone {
		return fmt.Errorf("auth.mode %q: want \"accounts\" or \"none\"", a.Mode)
	}
	for key, d := range map[string]Duration{
		"auth.session_ttl": a.SessionTTL,
		"auth.link_ttl":    a.LinkTTL,
	} {
		if d < Duration(time.Minute) {
			return fmt.Errorf("%s must be at least 1m, got %s", key, d)
		}
	}
	if a.KeyOverlap < 0 {
		return fmt.Errorf("auth.key_overlap must not be negative, got %s", a.KeyOverlap)
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return errors.New("tls: cert and key are set together or not at all")
	}
	if a.StateURL != "" {
		u, err := url.Parse(a.StateURL)
		if err != nil || u.Scheme != "s3" || u.Host == "" || strings.Trim(u.Path, "/") == "" || strings.HasSuffix(u.Path, "/") {
			return errors.New(`auth.state_url: want an S3 object such as "s3://bucket/mustserv/state.db?endpoint=http://10.0.0.9:9000&region=us-east-1"`)
		}
	}
	return nil
}

// ValidName reports whether s can name a library: it becomes the first
// segment of URLs, so it must be a plain, visible path segment.
func ValidName(s string) error {
	switch {
	case s == "":
		return errors.New("empty name")
	case strings.HasPrefix(s, "."):
		return fmt.Errorf("name %q starts with a dot", s)
	case strings.ContainsAny(s, `/\`):
		return fmt.Errorf("name %q contains a slash", s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("name %q contains a control character", s)
		}
	}
	return nil
}

// LibraryFromDir makes a library of a folder given on the command line,
// named after its base name.
func LibraryFromDir(dir string) (Library, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Library{}, fmt.Errorf("library %s: %w", dir, err)
	}
	name := filepath.Base(abs)
	if err := ValidName(name); err != nil {
		return Library{}, fmt.Errorf("library %s: %w", dir, err)
	}
	return Library{Name: name, Path: abs}, nil
}

// ResolveDataDir returns DataDir, or the user's data directory when empty.
func (s Server) ResolveDataDir(getenv func(string) string) (string, error) {
	if s.DataDir != "" {
		return s.DataDir, nil
	}
	if x := getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "mustserv"), nil
	}
	home := getenv("HOME")
	if home == "" {
		return "", errors.New("server.data_dir is empty and neither XDG_DATA_HOME nor HOME is set")
	}
	return filepath.Join(home, ".local", "share", "mustserv"), nil
}

// ParsePrefix parses an IP address or CIDR prefix.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q: %w", s, err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q: %w", s, err)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Duration is a time.Duration written as "10s" or "1m30s" in TOML.
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText formats the duration as Go does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// String formats the duration as Go does.
func (d Duration) String() string { return time.Duration(d).String() }

// validateStorage checks that a library names exactly one place: a folder
// or a URL this server can read.
func (l Library) validateStorage() error {
	switch {
	case l.Path == "" && l.URL == "":
		return errors.New("set path (a folder) or url (http://, https:// or s3://)")
	case l.Path != "" && l.URL != "":
		return errors.New("set path or url, not both")
	case l.Path != "":
		if l.Token != "" || l.AccessKey != "" || l.SecretKey != "" || l.Redirect {
			return errors.New("token, access_key, secret_key and redirect are for url libraries")
		}
		return nil
	}
	u, err := url.Parse(l.URL)
	if err != nil {
		// url.Parse's words may quote a piece of a password.
		return errors.New("url does not parse (in a password, write @ / ? # % as %40 %2F %3F %23 %25)")
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return errors.New("url: no host")
		}
		if u.RawQuery != "" || u.Fragment != "" || strings.Contains(u.EscapedPath(), "@") {
			// A query has no meaning here, and "@" in the path is
			// most likely a password with a "/" in it, not percent-encoded.
			return errors.New("url: no query or fragment, and no @ in the path (in a password, write @ / ? # % as %40 %2F %3F %23 %25)")
		}
		if l.AccessKey != "" || l.SecretKey != "" || l.Redirect {
			return errors.New("access_key, secret_key and redirect are for s3:// libraries")
		}
	case "s3":
		if u.Host == "" {
			return errors.New("url: no bucket (s3://bucket/prefix)")
		}
		if l.Token != "" {
			return errors.New("token is for http:// libraries")
		}
	default:
		return fmt.Errorf("url: scheme %q: want http, https or s3", u.Scheme)
	}
	return nil
}

// Remote reports whether the library is not a folder on this machine.
func (l Library) Remote() bool { return l.URL != "" }

// Where names the library's storage for logs and pages: its folder, or
// its URL without credentials.
func (l Library) Where() string {
	if l.URL == "" {
		return l.Path
	}
	u, err := url.Parse(l.URL)
	if err != nil {
		return "(a URL that does not parse)"
	}
	u.User = nil
	return u.String()
}

// validate checks the node's URLs (absolute http or https, no query) and
// durations; placement needs the node's own URL and at least one peer.
func (c Cluster) validate() error {
	check := func(key, raw string) error {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return fmt.Errorf("%s %q: want a URL such as http://10.0.0.2:8000", key, raw)
		}
		return nil
	}
	if c.URL != "" {
		if err := check("cluster.url", c.URL); err != nil {
			return err
		}
	}
	for _, p := range c.Peers {
		if err := check("cluster.peers", p); err != nil {
			return err
		}
		if strings.TrimSuffix(p, "/") == strings.TrimSuffix(c.URL, "/") {
			return fmt.Errorf("cluster.peers lists this node's own url %q", p)
		}
	}
	if c.Poll < 100*Duration(time.Millisecond) {
		return fmt.Errorf("cluster.poll must be at least 100ms, got %s", c.Poll)
	}
	if c.DrainDelay < 0 {
		return fmt.Errorf("cluster.drain_delay must not be negative, got %s", c.DrainDelay)
	}
	if c.Placement && (c.URL == "" || len(c.Peers) == 0) {
		return errors.New("cluster.placement needs cluster.url (this node's address) and cluster.peers")
	}
	if c.Direct && c.URL == "" {
		return errors.New("cluster.direct needs cluster.url (this node's address, which players are sent to)")
	}
	return nil
}
