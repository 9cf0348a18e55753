package config

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestExampleEqualsDefaults(t *testing.T) {
	t.Parallel()
	got, err := Parse("example.toml", Example())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Default(), got); diff != "" {
		t.Errorf("example.toml differs from Default() (-default +example):\n%s", diff)
	}
}

func TestShippedExampleIsTheEmbeddedOne(t *testing.T) {
	t.Parallel()
	shipped, err := os.ReadFile("../../mustserv.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(shipped, Example()) {
		t.Error("mustserv.example.toml differs from internal/config/example.toml; copy one onto the other")
	}
}

// TestExampleMentionsEveryKey keeps the example complete: a key added to
// Default but left out of the example would still compare equal.
func TestExampleMentionsEveryKey(t *testing.T) {
	t.Parallel()
	for _, key := range []string{
		"listen", "data_dir", "trusted_proxies", "read_header_timeout", "idle_timeout",
		"write_stall", "shutdown_grace", "max_header_bytes", "level", "access",
		"[[library]]", "name", "path", "dotfiles",
		"[cluster]", "url", "peers", "placement", "direct", "poll", "drain_delay",
		"[pace]", "enabled", "factor", "burst", "window", "uplink", "per_client", "unknown_rate", "on_full", "[library.pace]",
	} {
		if !bytes.Contains(Example(), []byte(key)) {
			t.Errorf("example does not mention %q", key)
		}
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    func(*Config)
		wantErr string
	}{
		{
			name: "overrides and libraries",
			in: "[server]\nlisten = \":9000\"\nwrite_stall = \"5s\"\n" +
				"[[library]]\nname = \"Music\"\npath = \"/srv/music\"\n" +
				"[[library]]\nname = \"Films\"\npath = \"/srv/films\"\ndotfiles = true\n",
			want: func(c *Config) {
				c.Server.Listen = ":9000"
				c.Server.WriteStall = Duration(5 * time.Second)
				c.Libraries = []Library{{Name: "Music", Path: "/srv/music"}, {Name: "Films", Path: "/srv/films", Dotfiles: true}}
			},
		},
		{name: "unknown key names its line", in: "[server]\nlisten = \":9000\"\nlisen = 1\n", wantErr: "cfg.toml:3:1: unknown key \"server.lisen\""},
		{name: "unknown section", in: "\n\n[sever]\nlisten = \"x\"\n", wantErr: "cfg.toml:3:"},
		{name: "unknown library key", in: "[[library]]\nname = \"a\"\npath = \"/a\"\nroot = \"/b\"\n", wantErr: "cfg.toml:4:1: unknown key \"library.root\""},
		{name: "syntax error has a line", in: "[server]\nlisten = \n", wantErr: "cfg.toml:2:"},
		{name: "bad duration", in: "[server]\nidle_timeout = \"soon\"\n", wantErr: "cfg.toml:2:"},
		{name: "cluster url without scheme", in: "[cluster]\nurl = \"10.0.0.2:8000\"\n", wantErr: "cluster.url \"10.0.0.2:8000\": want a URL"},
		{name: "cluster peer with a query", in: "[cluster]\npeers = [\"http://a:1/?x=1\"]\n", wantErr: "cluster.peers"},
		{name: "cluster peer is itself", in: "[cluster]\nurl = \"http://a:1\"\npeers = [\"http://a:1/\"]\n", wantErr: "own url"},
		{name: "cluster placement alone", in: "[cluster]\nplacement = true\n", wantErr: "cluster.placement needs"},
		{name: "cluster direct alone", in: "[cluster]\ndirect = true\n", wantErr: "cluster.direct needs"},
		{name: "cluster poll too short", in: "[cluster]\npoll = \"1ms\"\n", wantErr: "cluster.poll"},
		{name: "state url not s3", in: "[auth]\nstate_url = \"http://a/state.db\"\n", wantErr: "auth.state_url"},
		{name: "state url a folder", in: "[auth]\nstate_url = \"s3://b/dir/\"\n", wantErr: "auth.state_url"},
		{name: "cluster negative drain", in: "[cluster]\ndrain_delay = \"-1s\"\n", wantErr: "cluster.drain_delay"},
		{
			name: "cluster",
			in:   "[cluster]\nname = \"b\"\nurl = \"http://10.0.0.2:8000\"\npeers = [\"http://10.0.0.1:8000\"]\nplacement = true\ndrain_delay = \"5s\"\n",
			want: func(c *Config) {
				c.Cluster = Cluster{Name: "b", URL: "http://10.0.0.2:8000", Peers: []string{"http://10.0.0.1:8000"},
					Placement: true, Poll: Duration(time.Second), DrainDelay: Duration(5 * time.Second)}
			},
		},
		{name: "zero stall", in: "[server]\nwrite_stall = \"0s\"\n", wantErr: "server.write_stall must be positive"},
		{name: "bad listen", in: "[server]\nlisten = \"8000\"\n", wantErr: "server.listen"},
		{name: "bad level", in: "[log]\nlevel = \"loud\"\n", wantErr: "log.level"},
		{name: "bad proxy", in: "[server]\ntrusted_proxies = [\"10.0.0.0/99\"]\n", wantErr: "trusted_proxies"},
		{name: "duplicate library", in: "[[library]]\nname = \"a\"\npath = \"/a\"\n[[library]]\nname = \"a\"\npath = \"/b\"\n", wantErr: "used twice"},
		{name: "library without path", in: "[[library]]\nname = \"a\"\n", wantErr: "set path (a folder) or url"},
		{name: "library with path and url", in: "[[library]]\nname = \"a\"\npath = \"/x\"\nurl = \"http://h/\"\n", wantErr: "not both"},
		{name: "library url scheme", in: "[[library]]\nname = \"a\"\nurl = \"ftp://h/\"\n", wantErr: "want http, https or s3"},
		{name: "library url password not echoed", in: "[[library]]\nname = \"a\"\nurl = \"http://u:hunter2@h:x/\"\n", wantErr: "url does not parse"},
		{name: "password with a slash", in: "[[library]]\nname = \"a\"\nurl = \"http://u:12/hunter2@h/\"\n", wantErr: "no @ in the path"},
		{name: "http url query", in: "[[library]]\nname = \"a\"\nurl = \"http://h/?token=hunter2\"\n", wantErr: "no query"},
		{name: "s3 bucket", in: "[[library]]\nname = \"a\"\nurl = \"s3:///p\"\n", wantErr: "no bucket"},
		{name: "token on s3", in: "[[library]]\nname = \"a\"\nurl = \"s3://b/\"\ntoken = \"t\"\n", wantErr: "token is for http"},
		{name: "redirect on a folder", in: "[[library]]\nname = \"a\"\npath = \"/x\"\nredirect = true\n", wantErr: "for url libraries"},
		{name: "read ahead", in: "[storage]\nread_ahead = 10\n", wantErr: "storage.read_ahead"},
		{name: "library with slash", in: "[[library]]\nname = \"a/b\"\npath = \"/a\"\n", wantErr: "slash"},
		{
			name: "pace and a library override",
			in: "[pace]\nuplink = \"190Mbit\"\nper_client = \"20 Mbps\"\non_full = \"queue\"\nfactor = 1.5\n" +
				"[[library]]\nname = \"Films\"\npath = \"/f\"\n[library.pace]\nburst = \"4s\"\nunknown_rate = \"1.5Mbit\"\n",
			want: func(c *Config) {
				c.Pace.Uplink = 190_000_000
				c.Pace.PerClient = 20_000_000
				c.Pace.OnFull = "queue"
				c.Pace.Factor = 1.5
				burst, rate := Duration(4*time.Second), Bitrate(1_500_000)
				c.Libraries = []Library{{Name: "Films", Path: "/f", Pace: &PaceOverride{Burst: &burst, UnknownRate: &rate}}}
			},
		},
		{name: "factor below one", in: "[pace]\nfactor = 0.5\n", wantErr: "pace.factor"},
		{name: "bad bitrate", in: "[pace]\nuplink = \"fast\"\n", wantErr: "cfg.toml:2:"},
		{name: "bad on_full", in: "[pace]\non_full = \"drop\"\n", wantErr: "pace.on_full"},
		{name: "unknown rate above uplink", in: "[pace]\nuplink = \"1Mbit\"\n", wantErr: "exceeds the uplink"},
		{name: "library override checked", in: "[[library]]\nname = \"a\"\npath = \"/a\"\n[library.pace]\nfactor = 0\n", wantErr: "library \"a\": pace.factor"},
		{name: "dot library", in: "[[library]]\nname = \"..\"\npath = \"/a\"\n", wantErr: "dot"},
		{
			name: "auth and tls",
			in:   "[auth]\nmode = \"none\"\nlink_ttl = \"2h\"\nkey_file = \"/k\"\n[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nhsts = true\n",
			want: func(c *Config) {
				c.Auth.Mode = AuthNone
				c.Auth.LinkTTL = Duration(2 * time.Hour)
				c.Auth.KeyFile = "/k"
				c.TLS = TLS{Cert: "c.pem", Key: "k.pem", HSTS: true}
			},
		},
		{name: "bad auth mode", in: "[auth]\nmode = \"open\"\n", wantErr: "auth.mode"},
		{name: "short session", in: "[auth]\nsession_ttl = \"10s\"\n", wantErr: "auth.session_ttl"},
		{name: "negative overlap", in: "[auth]\nkey_overlap = \"-1s\"\n", wantErr: "auth.key_overlap"},
		{name: "cert without key", in: "[tls]\ncert = \"c.pem\"\n", wantErr: "cert and key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse("cfg.toml", []byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("err = %v shows the URL's password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Default()
			tt.want(&want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestListenAddr(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		listen, mode string
		accounts     bool
		want         string
	}{
		{"", "accounts", false, "127.0.0.1:8000"},
		{"", "accounts", true, ":8000"},
		{"", AuthNone, true, "127.0.0.1:8000"},
		{"127.0.0.1:9", "accounts", true, "127.0.0.1:9"},
		{":9", AuthNone, false, ":9"},
	} {
		c := Default()
		c.Server.Listen, c.Auth.Mode = tt.listen, tt.mode
		if got := c.ListenAddr(tt.accounts); got != tt.want {
			t.Errorf("listen %q, mode %s, accounts %v: %q, want %q", tt.listen, tt.mode, tt.accounts, got, tt.want)
		}
	}
}

func TestApplyEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{"MUSTSERV_LISTEN": ":1234", "MUSTSERV_DATA_DIR": "/d", "MUSTSERV_LOG_LEVEL": "debug"}
	c := Default()
	c.ApplyEnv(func(k string) string { return env[k] })
	if c.Server.Listen != ":1234" || c.Server.DataDir != "/d" || c.Log.Level != "debug" {
		t.Errorf("ApplyEnv left %+v %+v", c.Server, c.Log)
	}
	c = Default()
	c.ApplyEnv(func(string) string { return "" })
	if diff := cmp.Diff(Default(), c); diff != "" {
		t.Errorf("empty env changed the config:\n%s", diff)
	}
}

func TestResolveDataDir(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		dir  string
		env  map[string]string
		want string
	}{
		{"explicit", "/x", nil, "/x"},
		{"xdg", "", map[string]string{"XDG_DATA_HOME": "/xdg", "HOME": "/h"}, "/xdg/mustserv"},
		{"home", "", map[string]string{"HOME": "/h"}, "/h/.local/share/mustserv"},
	}
	for _, tt := range tests {
		got, err := Server{DataDir: tt.dir}.ResolveDataDir(func(k string) string { return tt.env[k] })
		if err != nil || got != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	if _, err := (Server{}).ResolveDataDir(func(string) string { return "" }); err == nil {
		t.Error("no HOME: want an error")
	}
}

func TestLibraryFromDir(t *testing.T) {
	t.Parallel()
	l, err := LibraryFromDir("/srv/My Music/")
	if err != nil || l.Name != "My Music" || l.Path != "/srv/My Music" {
		t.Errorf("got %+v, %v", l, err)
	}
	if _, err := LibraryFromDir("/"); err == nil {
		t.Error("root folder: want an error (its base name is a slash)")
	}
}

func TestPaceFor(t *testing.T) {
	t.Parallel()
	c, err := Parse("cfg.toml", []byte("[pace]\nfactor = 1.5\n[[library]]\nname = \"a\"\npath = \"/a\"\n[library.pace]\nenabled = false\n[[library]]\nname = \"b\"\npath = \"/b\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.PaceFor("a"); p.Enabled || p.Factor != 1.5 {
		t.Errorf("library a: %+v, want disabled with the global factor", p)
	}
	if p := c.PaceFor("b"); !p.Enabled || p.Factor != 1.5 {
		t.Errorf("library b: %+v, want the global settings", p)
	}
}

func TestBitrate(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Bitrate{
		"": 0, "0": 0, "8Mbit": 8e6, "128kbit": 128e3, "1.5Gbit": 15e8, "100Mbps": 1e8,
		"64 kbit/s": 64e3, "5M": 5e6, "700": 700, "2.5k": 2500,
	} {
		got, err := ParseBitrate(in)
		if err != nil || got != want {
			t.Errorf("ParseBitrate(%q) = %v, %v; want %v", in, got, err, want)
		}
		if back, err := ParseBitrate(got.String()); err != nil || back != got {
			t.Errorf("%q: String %q parses back as %v, %v", in, got.String(), back, err)
		}
	}
	for _, bad := range []string{"fast", "-1Mbit", "1e30", "NaN", "Mbit", "1.5.5k"} {
		if _, err := ParseBitrate(bad); err == nil {
			t.Errorf("ParseBitrate(%q) succeeded", bad)
		}
	}
}
