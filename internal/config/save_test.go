package config

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// everything is a config whose every setting differs from Default()
// (TestEverythingIsNotDefault checks), with strings TOML must quote.
func everything() Config {
	off, factor := false, 3.5
	burst, rate := Duration(2500*time.Millisecond), Bitrate(1_500_000)
	return Config{
		Server: Server{
			Listen:            "[::1]:9443",
			DataDir:           "/var/lib/mustserv's data",
			TrustedProxies:    []string{"127.0.0.1", "10.0.0.0/8", "::1"},
			ReadHeaderTimeout: Duration(1500 * time.Millisecond),
			IdleTimeout:       Duration(3 * time.Minute),
			WriteStall:        Duration(45 * time.Second),
			ShutdownGrace:     0,
			MaxHeaderBytes:    4096,
		},
		Log: Log{Level: "debug", Access: false},
		Pace: Pace{
			Enabled:     false,
			Factor:      1.1,
			Burst:       0,
			Window:      Duration(250 * time.Millisecond),
			Uplink:      100_000_000,
			PerClient:   12_345_678,
			UnknownRate: 2_000_001,
			OnFull:      "queue",
		},
		Scan:    Scan{Watch: false, Interval: 0, Workers: 7},
		Storage: Storage{Timeout: Duration(3 * time.Second), ReadAhead: 1 << 20, CacheSize: 5 << 30, CacheDir: "/var/cache/mustserv ranges"},
		Auth: Auth{
			Mode:           AuthNone,
			SessionTTL:     Duration(90 * time.Minute),
			LinkTTL:        Duration(time.Minute),
			KeyOverlap:     0,
			KeyFile:        `C:\keys\"signing".keys`,
			StateFile:      "/var/lib/mustserv/state.db",
			StateURL:       "s3://accounts/mustserv/state.db?endpoint=http://10.0.0.9:9000&region=eu-west-1",
			StateAccessKey: "AK2", StateSecretKey: "SK2",
		},
		TLS: TLS{Cert: "/etc/ssl/cert\twith tab.pem", Key: "/etc/ssl/ключ.pem", HSTS: true},
		Cluster: Cluster{Name: "node \"b\"", URL: "http://10.0.0.2:8000", Peers: []string{"http://10.0.0.1:8000", "https://[fd00::3]:8443/"},
			Placement: true, Direct: true, Poll: Duration(2500 * time.Millisecond), DrainDelay: Duration(4 * time.Second)},
		Libraries: []Library{
			{Name: "Music", Path: "/srv/music", Dotfiles: true},
			{Name: "Films ☃", Path: "/srv/films", Pace: &PaceOverride{Enabled: &off, Factor: &factor, Burst: &burst, UnknownRate: &rate}},
			{Name: "Talks", Path: "/srv/talks\nnext line", Pace: &PaceOverride{Factor: &factor}},
			{Name: "Empty override", Path: "/srv/e", Pace: &PaceOverride{}},
			{Name: "NAS", URL: "http://nas.local/media/", Token: "mk_0123456789abcdef_secret"},
			{Name: "Bucket", URL: "s3://music/flac?endpoint=http://127.0.0.1:9000&region=eu-west-1", AccessKey: "AK", SecretKey: "SK", Redirect: true},
		},
	}
}

// TestEverythingIsNotDefault keeps the round trip honest: a setting left
// at its default would round-trip even if Save dropped it.
func TestEverythingIsNotDefault(t *testing.T) {
	t.Parallel()
	def, all := reflect.ValueOf(Default()), reflect.ValueOf(everything())
	for i := range def.NumField() {
		name := def.Type().Field(i).Name
		if name == "Libraries" {
			continue
		}
		d, a := def.Field(i), all.Field(i)
		for j := range d.NumField() {
			if reflect.DeepEqual(d.Field(j).Interface(), a.Field(j).Interface()) {
				t.Errorf("everything().%s.%s equals the default", name, d.Type().Field(j).Name)
			}
		}
	}
	c := everything()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestSaveRoundTrip(t *testing.T) {
	t.Parallel()
	noSlices := Default()
	noSlices.Server.TrustedProxies, noSlices.Libraries = nil, nil
	tests := []struct {
		name      string
		in, want  Config
		notInFile []string
	}{
		{name: "defaults", in: Default(), want: Default(), notInFile: []string{"library"}},
		{name: "everything set", in: everything(), want: everything()},
		// nil and empty slices are one setting; Parse gives empty ones.
		{name: "nil slices", in: noSlices, want: Default()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "mustserv.toml")
			if err := Save(path, tt.in); err != nil {
				t.Fatal(err)
			}
			got, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Load after Save (-want +got):\n%s", diff)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if want := header("mustserv.toml"); !bytes.HasPrefix(data, []byte(want)) {
				t.Errorf("file does not start with the header %q:\n%s", want, data)
			}
			if !bytes.Contains(data, []byte("mustserv.toml.bak")) {
				t.Errorf("header does not name the .bak file:\n%s", data)
			}
			for _, s := range tt.notInFile {
				if bytes.Contains(data, []byte(s)) {
					t.Errorf("file contains %q:\n%s", s, data)
				}
			}
		})
	}
}

// TestSaveReadable pins the look of the values people read: durations and
// bitrates as in the example, overrides under [library.pace].
func TestSaveReadable(t *testing.T) {
	t.Parallel()
	data, err := encode("mustserv.toml", everything())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\n[server]\n", "read_header_timeout = '1.5s'", "idle_timeout = '3m0s'",
		"uplink = '100Mbit'", "per_client = '12345678bit'", "unknown_rate = '2000001bit'",
		"factor = 1.1\n", "\n[[library]]\nname = 'Films ☃'", "\n[library.pace]\nenabled = false\nfactor = 3.5\nburst = '2.5s'\nunknown_rate = '1500kbit'\n",
		"\n[library.pace]\nfactor = 3.5\n\n", `path = "/srv/talks\nnext line"`,
	} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("encoded config lacks %q:\n%s", want, data)
		}
	}
}

// TestSaveHeaderOddName: a newline in the file's name must not end the
// header's comment and break the file.
func TestSaveHeaderOddName(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a\nb.toml")
	if err := Save(path, everything()); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(everything(), got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestSaveMode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		old  os.FileMode // 0: no file yet
		want os.FileMode
	}{
		{name: "new file is private", old: 0, want: 0o600},
		{name: "group readable kept", old: 0o640, want: 0o640},
		{name: "world readable kept", old: 0o644, want: 0o644},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "mustserv.toml")
			if tt.old != 0 {
				writeFile(t, path, "[log]\nlevel = \"warn\"\n")
				if err := os.Chmod(path, tt.old); err != nil {
					t.Fatal(err)
				}
			}
			if err := Save(path, everything()); err != nil {
				t.Fatal(err)
			}
			files := []string{path}
			if tt.old != 0 {
				files = append(files, path+".bak")
			}
			for _, f := range files {
				fi, err := os.Stat(f)
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.Mode().Perm(); got != tt.want {
					t.Errorf("%s: mode %v, want %v", filepath.Base(f), got, tt.want)
				}
			}
		})
	}
}

// TestSaveKeepsPrevious: .bak holds exactly the bytes the file had before
// the last change, and a save that changes nothing keeps it.
func TestSaveKeepsPrevious(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "mustserv.toml")
	hand := "# my own comment\n[log]\nlevel = \"warn\"\n"
	writeFile(t, path, hand)

	c, err := Edit(path, func(c *Config) error { c.Log.Level = "debug"; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if c.Log.Level != "debug" {
		t.Errorf("Edit returned level %q, want debug", c.Log.Level)
	}
	if got := readFile(t, path+".bak"); got != hand {
		t.Errorf(".bak = %q, want the hand-written file %q", got, hand)
	}
	first := readFile(t, path)
	if strings.Contains(first, "my own comment") {
		t.Errorf("saved file kept a comment it says it drops:\n%s", first)
	}

	if _, err := Edit(path, func(c *Config) error { c.Log.Access = false; return nil }); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path+".bak"); got != first {
		t.Errorf("after a second change .bak = %q, want the first save %q", got, first)
	}

	second := readFile(t, path)
	c, err = Edit(path, func(*Config) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if c.Log.Access || c.Log.Level != "debug" {
		t.Errorf("Edit returned log %+v, want level debug, no access log", c.Log)
	}
	if got := readFile(t, path); got != second {
		t.Errorf("a change of nothing rewrote the file: %q, want %q", got, second)
	}
	if got := readFile(t, path+".bak"); got != first {
		t.Errorf("a change of nothing replaced .bak: %q, want %q", got, first)
	}
}

// TestEditRefused: a refused change leaves every file in the folder as it
// was, adds none, and says why.
func TestEditRefused(t *testing.T) {
	t.Parallel()
	errMine := errors.New("no library named Podcasts")
	tests := []struct {
		name    string
		change  func(*Config) error
		wantErr string
		wantIs  error
	}{
		{name: "change fails", change: func(*Config) error { return errMine }, wantErr: errMine.Error(), wantIs: errMine},
		{name: "duplicate library", change: func(c *Config) error {
			c.Libraries = append(c.Libraries, Library{Name: "Music", Path: "/elsewhere"})
			return nil
		}, wantErr: `library[1].name "Music" is used twice`},
		{name: "pace factor", change: func(c *Config) error { c.Pace.Factor = 0.5; return nil }, wantErr: "pace.factor must be between 1 and 100"},
		{name: "library pace override", change: func(c *Config) error {
			f := 500.0
			c.Libraries[0].Pace = &PaceOverride{Factor: &f}
			return nil
		}, wantErr: `library "Music": pace.factor`},
		{name: "half of tls", change: func(c *Config) error { c.TLS.Cert = "/c.pem"; return nil }, wantErr: "tls: cert and key"},
		{name: "path not UTF-8", change: func(c *Config) error {
			c.Libraries = append(c.Libraries, Library{Name: "Odd", Path: "/srv/\xff"})
			return nil
		}, wantErr: "library[1].path is not valid UTF-8"},
		// Validate allows it, but ParseBitrate refuses more than 1e15.
		{name: "bitrate the file cannot hold", change: func(c *Config) error { c.Pace.UnknownRate = 2e15; return nil }, wantErr: "2000000Gbit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "mustserv.toml")
			writeFile(t, path, "[[library]]\nname = \"Music\"\npath = \"/srv/music\"\n")
			if _, err := Edit(path, func(c *Config) error { c.Log.Level = "warn"; return nil }); err != nil {
				t.Fatal(err) // so that there is a .bak to keep
			}
			before := snapshot(t, dir)

			_, err := Edit(path, tt.change)
			var refused *RefusedError
			if !errors.As(err, &refused) {
				t.Fatalf("Edit error = %v (%T), want a *RefusedError", err, err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Edit error = %q, want it to say %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Edit error %v does not wrap the change's error", err)
			}
			if diff := cmp.Diff(before, snapshot(t, dir)); diff != "" {
				t.Errorf("a refused change changed the folder (-before +after):\n%s", diff)
			}
		})
	}
}

// TestSaveRefusedNewFile: an invalid config creates nothing, not even a
// temporary file.
func TestSaveRefusedNewFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := Default()
	c.Log.Level = "loud"
	err := Save(filepath.Join(dir, "mustserv.toml"), c)
	var refused *RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "log.level") {
		t.Errorf("Save error = %v, want a *RefusedError naming log.level", err)
	}
	if got := snapshot(t, dir); len(got) != 0 {
		t.Errorf("a refused save left files: %v", slices.Sorted(maps.Keys(got)))
	}
}

// TestSaveRemovesStaleTemps: the temporary file of a killed save goes at
// the next save; files that only look alike stay.
func TestSaveRemovesStaleTemps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "mustserv.toml")
	stale := []string{"mustserv.toml.tmp-123456789", "mustserv.toml.tmp-1"}
	kept := []string{"mustserv.toml.tmp-notes", "mustserv.toml.tmp-", "other.toml.tmp-123", "mustserv.toml.tmp-12x"}
	for _, name := range append(slices.Clone(stale), kept...) {
		writeFile(t, filepath.Join(dir, name), "half a config")
	}
	if err := Save(path, Default()); err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(maps.Keys(snapshot(t, dir)))
	want := slices.Sorted(slices.Values(append(slices.Clone(kept), "mustserv.toml")))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("files after Save (-want +got):\n%s", diff)
	}
}

// TestSaveFollowsSymlink: a linked config (/etc/mustserv.toml pointing into
// a shared folder) stays a link; its target changes.
func TestSaveFollowsSymlink(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	real := filepath.Join(dir, "shared", "mustserv.toml")
	if err := os.Mkdir(filepath.Dir(real), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, real, "[log]\nlevel = \"warn\"\n")
	link := filepath.Join(dir, "link.toml")
	if err := os.Symlink(real, link); err != nil {
		t.Skipf("no symlinks here: %v", err)
	}
	if _, err := Edit(link, func(c *Config) error { c.Log.Level = "error"; return nil }); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("link.toml is no longer a symlink (%v)", err)
	}
	if c, err := Load(real); err != nil || c.Log.Level != "error" {
		t.Errorf("target: level %q, %v; want error", c.Log.Level, err)
	}
	if got := readFile(t, real+".bak"); got != "[log]\nlevel = \"warn\"\n" {
		t.Errorf(".bak beside the target = %q", got)
	}
}

// TestEditorSerialises: concurrent Edits through one Editor lose nothing.
// Each Edit loads, changes and saves with fsyncs in between, so unserialised
// they would overwrite each other's libraries.
func TestEditorSerialises(t *testing.T) {
	t.Parallel()
	const n = 16
	dir := t.TempDir()
	ed := NewEditor(filepath.Join(dir, "mustserv.toml"))
	if err := Save(ed.Path(), Default()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := ed.Edit(func(c *Config) error {
				c.Libraries = append(c.Libraries, Library{Name: fmt.Sprint(i), Path: "/srv"})
				return nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	c, err := Load(ed.Path())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range c.Libraries {
		names = append(names, l.Name)
	}
	want := make([]string, n)
	for i := range n {
		want[i] = fmt.Sprint(i)
	}
	slices.Sort(names)
	slices.Sort(want)
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("libraries after %d concurrent Edits (-want +got):\n%s", n, diff)
	}
	if got := slices.Sorted(maps.Keys(snapshot(t, dir))); !slices.Equal(got, []string{"mustserv.toml", "mustserv.toml.bak"}) {
		t.Errorf("files after the Edits: %v", got)
	}
}

// FuzzSaveRoundTrip: whatever strings and numbers a valid config holds,
// the file Save writes loads as that config, or Save refuses it.
func FuzzSaveRoundTrip(f *testing.F) {
	f.Add("Music", "/srv/music", "", 1.25, int64(8e9), int64(8e6), int64(0))
	f.Add("it's", `C:\a "b"`, "tab\there", 1.0000000000000002, int64(1), int64(1), int64(1))
	f.Add("'''", "\"\"\"\n'''", "\x7f", 99.99999999999999, int64(0), int64(999_999_999_999_999), int64(1e15))
	f.Add("☃", "/srv/\xff", "é", 2.0, int64(-1), int64(2e15), int64(-5))
	f.Fuzz(func(t *testing.T, name, path, keyFile string, factor float64, burst, rate, uplink int64) {
		c := Default()
		b, r := Duration(burst), Bitrate(rate)
		c.Auth.KeyFile = keyFile
		c.Pace.Uplink = Bitrate(uplink)
		c.Libraries = []Library{{Name: name, Path: path, Pace: &PaceOverride{Factor: &factor, Burst: &b, UnknownRate: &r}}}
		if c.Validate() != nil {
			return
		}
		data, err := encode("fuzz.toml", c)
		if refused := (*RefusedError)(nil); errors.As(err, &refused) {
			// Only what a TOML file cannot hold may be refused: bytes that
			// are not UTF-8, bitrates ParseBitrate does not read.
			holdable := utf8.ValidString(name) && utf8.ValidString(path) && utf8.ValidString(keyFile) &&
				rate <= 1e15 && uplink >= 0 && uplink <= 1e15
			if holdable {
				t.Fatalf("Save refused a config a file can hold: %v", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		got, err := Parse("fuzz.toml", data)
		if err != nil {
			t.Fatalf("encoded config does not parse: %v\n%s", err, data)
		}
		if diff := cmp.Diff(c, got); diff != "" {
			t.Errorf("(-saved +loaded):\n%s", diff)
		}
	})
}

// The kill test's child is this test binary running TestSaveHelper with
// these variables set: the config file, and the number of its first save.
const (
	helperPathEnv  = "MUSTSERV_TEST_SAVE_HELPER_PATH"
	helperFirstEnv = "MUSTSERV_TEST_SAVE_HELPER_FIRST"
)

// killState is state i of TestSaveSurvivesKill: libraries named after i,
// and a length that varies with i so that a torn file could not pass for
// a whole one.
func killState(i int) Config {
	c := Default()
	c.Pace.Factor = 1 + float64(i%990)/10
	for j := range 1 + i%5 {
		c.Libraries = append(c.Libraries, Library{Name: fmt.Sprintf("s%d-%d", i, j), Path: fmt.Sprintf("/srv/%d/%d", i, j)})
	}
	return c
}

// stateOf returns i such that c is killState(i), or an error.
func stateOf(c Config) (int, error) {
	var i, j int
	if len(c.Libraries) == 0 {
		return 0, errors.New("no libraries: not a killState")
	}
	if _, err := fmt.Sscanf(c.Libraries[0].Name, "s%d-%d", &i, &j); err != nil {
		return 0, fmt.Errorf("library %q: not a killState", c.Libraries[0].Name)
	}
	if diff := cmp.Diff(killState(i), c); diff != "" {
		return 0, fmt.Errorf("differs from state %d (-want +got):\n%s", i, diff)
	}
	return i, nil
}

// TestSaveHelper is the saver that TestSaveSurvivesKill kills. For every
// line on stdin it saves the next state, printing "saving i" before and
// "saved i" after. Waiting for a line is what lets the parent kill it
// between saves for sure, without sleeping.
func TestSaveHelper(t *testing.T) {
	path := os.Getenv(helperPathEnv)
	if path == "" {
		t.Skip("only runs as the child of TestSaveSurvivesKill")
	}
	first, err := strconv.Atoi(os.Getenv(helperFirstEnv))
	if err != nil {
		fmt.Printf("error %v\n", err)
		return
	}
	in := bufio.NewReader(os.Stdin)
	for i := first; ; i++ {
		if _, err := in.ReadString('\n'); err != nil {
			return // the parent is gone
		}
		fmt.Printf("saving %d\n", i)
		if _, err := Edit(path, func(c *Config) error { *c = killState(i); return nil }); err != nil {
			fmt.Printf("error %v\n", strings.ReplaceAll(err.Error(), "\n", " "))
			return
		}
		fmt.Printf("saved %d\n", i)
	}
}

// killPlan is how one round of TestSaveSurvivesKill ends its child.
type killPlan struct {
	saves   int           // saves let finish first
	between bool          // kill while the child waits to start the next save
	after   time.Duration // else: kill this long after "saving i" arrives
}

// killOutcome is what the child printed before it died.
type killOutcome struct {
	last     int  // the last save it announced
	finished bool // "saved last" arrived: the kill landed after that save
	saveDurs []time.Duration
}

// TestSaveSurvivesKill is issue 6's acceptance point: kill -9 during admin
// saves leaves a config file that always parses and equals either the old
// or the new state. 100 rounds each start a saver, let it finish a few
// saves, and SIGKILL it between saves or at a random moment inside one;
// each round goes on from the file the last one left.
func TestSaveSurvivesKill(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skipf("no SIGKILL on %s", runtime.GOOS)
	}
	const (
		rounds = 100
		// Bounded so that a hang fails clearly; the run takes a few
		// seconds alone, 15 under -race beside the other packages' tests.
		budget = 90 * time.Second
	)
	dir := t.TempDir()
	path := filepath.Join(dir, "mustserv.toml")
	if err := Save(path, killState(0)); err != nil {
		t.Fatal(err)
	}
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 0))
	ctx, cancel := context.WithTimeout(t.Context(), budget)
	defer cancel()

	began := time.Now()
	held := 0 // the state the file holds
	next := 1 // the state the next child saves first
	var typical time.Duration
	var atOnce, spun, between, midOld, midNew, done, leftTemp, bakIsFile int
	for round := range rounds {
		plan := killPlan{saves: rng.IntN(3)}
		switch p := rng.IntN(4); {
		case p == 0:
			plan.between = true
		case p == 1:
			atOnce++
		default:
			// Up to 1.5 saves' time: the kill lands anywhere in the save,
			// sometimes after it.
			plan.after = time.Duration(rng.Float64() * 1.5 * float64(typical))
			spun++
		}
		out, err := killRound(ctx, path, next, plan)
		if ctx.Err() != nil {
			t.Fatalf("over the %s budget after %d of %d rounds (seed %d): is a save hanging? %v", budget, round, rounds, seed, err)
		}
		if err != nil {
			t.Fatalf("round %d (seed %d, plan %+v): %v", round, seed, plan, err)
		}
		for _, d := range out.saveDurs {
			typical = (typical*7 + d) / 8
		}

		c, err := Load(path)
		if err != nil {
			t.Fatalf("round %d: after a kill (last save announced %d, finished %v) the file does not load: %v", round, out.last, out.finished, err)
		}
		got, err := stateOf(c)
		if err != nil {
			t.Fatalf("round %d: after a kill (last save announced %d, finished %v) the file is torn: %v", round, out.last, out.finished, err)
		}
		// The state before save last: the one saved just before it in this
		// round, or the one the file held when the round began.
		old := held
		if out.last > next {
			old = out.last - 1
		}
		switch {
		case out.last < next && got != held:
			t.Fatalf("round %d: killed before any save; the file went from state %d to %d", round, held, got)
		case out.last >= next && out.finished && got != out.last:
			t.Fatalf("round %d: save %d finished before the kill but the file holds state %d", round, out.last, got)
		case !out.finished && got != old && got != out.last:
			t.Fatalf("round %d: killed in save %d; the file holds state %d, want %d or %d", round, out.last, got, old, out.last)
		case plan.between:
			between++
		case out.finished:
			done++ // the spin outlasted the save
		case got == old:
			midOld++
		default:
			midNew++
		}
		held, next = got, out.last+1

		temps := 0
		for name := range snapshot(t, dir) {
			if isTemp("mustserv.toml", name) {
				temps++
			}
		}
		if temps > 1 {
			t.Fatalf("round %d: %d temporary files in the folder, want at most the killed save's one", round, temps)
		}
		leftTemp += temps
		if _, err := os.Stat(path + ".bak"); err == nil {
			bak, err := Load(path + ".bak")
			if err != nil {
				t.Fatalf("round %d: .bak does not load: %v", round, err)
			}
			b, err := stateOf(bak)
			if err != nil || b > held {
				t.Fatalf("round %d: .bak is state %d (%v), want one up to the file's %d", round, b, err, held)
			}
			if b == held && !out.finished {
				bakIsFile++ // killed between the two renames
			}
		}
	}
	// The next save removes what the killed ones left.
	if err := Save(path, killState(next)); err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(snapshot(t, dir))); !slices.Equal(got, []string{"mustserv.toml", "mustserv.toml.bak"}) {
		t.Errorf("files after a save following the kills: %v", got)
	}
	t.Logf("%d kills in %v (seed %d, a save takes ~%v): %d between saves, %d inside a save "+
		"(%d right after \"saving\", %d after a random spin; %d left the old state, %d the new, %d left a temporary file, "+
		"%d a .bak equal to the file), "+
		"%d after the save being timed had finished",
		rounds, time.Since(began).Round(time.Millisecond), seed, typical.Round(time.Microsecond), between, midOld+midNew,
		atOnce, spun, midOld, midNew, leftTemp, bakIsFile, done)
}

// killRound runs one child from state first, lets it finish plan.saves
// saves, kills it as planned and reports what it had printed.
func killRound(ctx context.Context, path string, first int, plan killPlan) (killOutcome, error) {
	out := killOutcome{last: first - 1, finished: true}
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestSaveHelper$", "-test.count=1", "-test.timeout=1m")
	cmd.Env = append(os.Environ(), helperPathEnv+"="+path, helperFirstEnv+"="+strconv.Itoa(first))
	var stderr lockedBuffer // written by exec's copier while the test reads it
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return out, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return out, err
	}
	if err := cmd.Start(); err != nil {
		return out, err
	}
	lines := bufio.NewScanner(stdout)
	var seen []string
	// expect reads the child's next line, which must be want.
	expect := func(want string) error {
		if !lines.Scan() {
			return fmt.Errorf("child stopped before %q (printed %q; stderr %q)", want, seen, stderr.String())
		}
		seen = append(seen, lines.Text())
		if lines.Text() != want {
			return fmt.Errorf("child printed %q, want %q (stderr %q)", lines.Text(), want, stderr.String())
		}
		return nil
	}
	fail := func(err error) (killOutcome, error) {
		cmd.Process.Kill()
		cmd.Wait()
		return out, err
	}

	i := first
	for range plan.saves {
		if _, err := io.WriteString(stdin, "go\n"); err != nil {
			return fail(err)
		}
		if err := expect(fmt.Sprintf("saving %d", i)); err != nil {
			return fail(err)
		}
		start := time.Now()
		if err := expect(fmt.Sprintf("saved %d", i)); err != nil {
			return fail(err)
		}
		out.saveDurs = append(out.saveDurs, time.Since(start))
		out.last = i
		i++
	}
	if !plan.between {
		if _, err := io.WriteString(stdin, "go\n"); err != nil {
			return fail(err)
		}
		if err := expect(fmt.Sprintf("saving %d", i)); err != nil {
			return fail(err)
		}
		out.last, out.finished = i, false
		// A busy wait, not a sleep: it places the kill, it synchronises
		// nothing, and a sleep's granularity is coarser than a save.
		for start := time.Now(); time.Since(start) < plan.after; {
			runtime.Gosched()
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		return fail(err)
	}
	// Whatever the child printed before it died says where the kill landed.
	for lines.Scan() {
		seen = append(seen, lines.Text())
		if lines.Text() != fmt.Sprintf("saved %d", out.last) || out.finished {
			return fail(fmt.Errorf("child printed %q after %q", lines.Text(), seen[:len(seen)-1]))
		}
		out.finished = true
	}
	stdin.Close()
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != -1 {
		return out, fmt.Errorf("child exited with %d before the kill (printed %q; stderr %q)", code, seen, stderr.String())
	}
	return out, nil
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// snapshot maps the names of dir's files to their contents and modes.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = fi.Mode().String() + " " + string(b)
	}
	return m
}

// lockedBuffer is a bytes.Buffer safe to write from one goroutine (exec's
// copier) and read from another.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
