package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"mustserv/internal/config"
	"mustserv/internal/cover"
	"mustserv/internal/index"
	"mustserv/internal/library"
	"mustserv/internal/logbuf"
	"mustserv/internal/metrics"
	"mustserv/internal/pace"
	"mustserv/internal/probe"
	"mustserv/internal/scan"
	"mustserv/internal/storage"
	"mustserv/internal/stream"
	"mustserv/internal/web"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

// usageError is a mistake on the command line: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

const usage = `usage: mustserv <command> [arguments]

commands:
  serve [--config FILE] [--listen ADDR] [--data DIR] [--log-level LEVEL] [--no-auth] [DIR...]
                          serve the configured libraries and each DIR
  scan [--config FILE] [--data DIR] [DIR...]
                          scan the libraries into the index once and exit
  user add NAME [--role admin|user|guest] [--library NAME]... [--password-file FILE]
  user passwd NAME [--password-file FILE]
  user access NAME --role ROLE [--library NAME]...
  user del NAME | user list
  user key add NAME LABEL | user key list [NAME] | user key del NAME ID
                          manage accounts and API keys (the server may run)
  haproxy-config --node URL[=WEIGHT]... [--balance leastconn|roundrobin|weighted|random]
                 [--listen ADDR] [--check-interval DUR] [--fall N] [--rise N]
                          print an HAProxy configuration for these nodes
  probe [--json] FILE...  print what the probe finds in media files
  config example          print a complete, commented configuration
  config check FILE       validate a configuration file
  version                 print the version
`

// run is the whole program: main only adds signals and the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command given"}
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return runServe(ctx, rest, getenv, stdout, stderr)
	case "scan":
		return runScan(ctx, rest, getenv, stdout, stderr)
	case "user":
		return runUser(ctx, rest, getenv, stdout, stderr)
	case "config":
		return runConfig(rest, stdout, stderr)
	case "haproxy-config":
		return runHAProxyConfig(rest, stdout, stderr)
	case "probe":
		return runProbe(ctx, rest, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "mustserv", versionString())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		v += " " + bi.GoVersion
	}
	return v
}

// errProbeFailed makes the exit status 1 after probe printed its reports.
var errProbeFailed = errors.New("some files could not be probed")

// runProbe prints a report for each file: one JSON object per line with
// --json (field names are stable), else a short human summary. A file that
// cannot be probed gets a report with "error" set, and the exit status is
// 1; the other files are still probed.
func runProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("probe", flag.ContinueOnError)
	fset.SetOutput(stderr)
	asJSON := fset.Bool("json", false, "print JSON, one object per line")
	window := fset.Duration("window", 4*time.Second, "peak bitrate `window`")
	if err := fset.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fset.NArg() == 0 {
		return usageError{"usage: mustserv probe [--json] [--window DUR] FILE..."}
	}
	enc := json.NewEncoder(stdout)
	failed := false
	for _, name := range fset.Args() {
		rep, size, err := probeFile(ctx, name, probe.Options{Window: *window})
		failed = failed || err != nil
		// What the server paces a stream of the file by: the peak
		// scaled to the file's bytes (stream.PeakRate).
		paceRate := stream.PeakRate(rep, size)
		if *asJSON {
			if err := enc.Encode(struct {
				File string `json:"file"`
				*probe.Report
				Pace int64 `json:"pace_bps,omitempty"`
			}{name, rep, paceRate}); err != nil {
				return err
			}
			continue
		}
		printReport(stdout, name, rep, paceRate)
	}
	if failed {
		return errProbeFailed
	}
	return nil
}

func probeFile(ctx context.Context, name string, opts probe.Options) (*probe.Report, int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return &probe.Report{Error: err.Error(), Streams: []probe.Stream{}}, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return &probe.Report{Error: err.Error(), Streams: []probe.Stream{}}, 0, err
	}
	rep, err := probe.Probe(ctx, f, fi.Size(), name, opts)
	return rep, fi.Size(), err
}

func printReport(w io.Writer, name string, r *probe.Report, paceRate int64) {
	if r.Error != "" {
		fmt.Fprintf(w, "%s: error: %s\n", name, r.Error)
		return
	}
	fmt.Fprintf(w, "%s: %s, %.3f s, average %d bit/s, peak %d bit/s (%s, %g s window)",
		name, r.Container, r.Duration, r.BitrateAvg, r.BitratePeak, r.PeakMethod, r.PeakWindow)
	if paceRate > 0 {
		fmt.Fprintf(w, ", paced by %d bit/s", paceRate)
	}
	fmt.Fprintln(w)
	for _, s := range r.Streams {
		switch s.Type {
		case "video":
			fmt.Fprintf(w, "  video %s %dx%d %g fps\n", s.Codec, s.Width, s.Height, s.FrameRate)
		default:
			fmt.Fprintf(w, "  %s %s %d Hz %d ch\n", s.Type, s.Codec, s.SampleRate, s.Channels)
		}
	}
	t := r.Tags
	if t.Title != "" || len(t.Artists) > 0 || t.Album != "" {
		fmt.Fprintf(w, "  %q by %q on %q, track %d, disc %d, year %d, genres %q\n",
			t.Title, strings.Join(t.Artists, "; "), t.Album, t.Track, t.Disc, t.Year, t.Genres)
	}
	if c := r.Cover; c != nil {
		fmt.Fprintf(w, "  cover %s, %d bytes at %d\n", c.MIME, c.Size, c.Offset)
	}
}

func runConfig(args []string, stdout, stderr io.Writer) error {
	switch {
	case len(args) == 1 && args[0] == "example":
		_, err := stdout.Write(config.Example())
		return err
	case len(args) == 2 && args[0] == "check":
		c, err := config.Load(args[1])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: ok (%d libraries)\n", args[1], len(c.Libraries))
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{"usage: mustserv config example | mustserv config check FILE"}
}

// configFile is the configuration file the admin pages write back to
// when the server was started without --config: in the data folder, and
// read from there at the next start.
const configFile = "mustserv.toml"

// configSource is where the running configuration comes from: a file
// (which the admin pages rewrite) and what is laid over it.
type configSource struct {
	// file is the configuration file; with no --config, configFile in
	// the data folder, which may not exist yet.
	file string
	// overlay lays the environment, the flags and the folders named on
	// the command line over a file's settings and validates the result.
	overlay func(config.Config) (config.Config, error)
}

// loadConfig builds the configuration of command cmd ("scan" has no
// --listen): defaults, then the file, then MUSTSERV_* variables, then
// flags, then folders named on the command line; with its source.
func loadConfig(cmd string, args []string, getenv func(string) string, stderr io.Writer) (config.Config, configSource, error) {
	fset := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fset.SetOutput(stderr)
	file := fset.String("config", "", "configuration `file` (TOML); default: "+configFile+" in the data dir, if there is one")
	listen, noAuth := new(string), new(bool)
	if cmd == "serve" {
		listen = fset.String("listen", "", "listen `address`, e.g. :8000 (default 127.0.0.1:8000 until accounts exist, then :8000)")
		noAuth = fset.Bool("no-auth", false, "no accounts: anyone who reaches the server may do anything (auth.mode = \"none\")")
	}
	data := fset.String("data", "", "data `dir`")
	level := fset.String("log-level", "", "log `level`: debug, info, warn, error")
	if err := fset.Parse(args); err != nil {
		return config.Config{}, configSource{}, usageError{err.Error()}
	}
	var dirs []config.Library
	for _, dir := range fset.Args() {
		l, err := config.LibraryFromDir(dir)
		if err != nil {
			return config.Config{}, configSource{}, err
		}
		dirs = append(dirs, l)
	}
	src := configSource{file: *file, overlay: func(cfg config.Config) (config.Config, error) {
		cfg.ApplyEnv(getenv)
		if *listen != "" {
			cfg.Server.Listen = *listen
		}
		if *data != "" {
			cfg.Server.DataDir = *data
		}
		if *level != "" {
			cfg.Log.Level = *level
		}
		if *noAuth {
			cfg.Auth.Mode = config.AuthNone
		}
		cfg.Libraries = append(slices.Clone(cfg.Libraries), dirs...)
		if err := cfg.Validate(); err != nil {
			return config.Config{}, err
		}
		return cfg, nil
	}}
	base := config.Default()
	if src.file == "" {
		// The data folder's own file, if the admin pages wrote one.
		cfg, err := src.overlay(base)
		if err != nil {
			return config.Config{}, configSource{}, err
		}
		dataDir, err := cfg.Server.ResolveDataDir(getenv)
		if err != nil {
			return config.Config{}, configSource{}, err
		}
		src.file = filepath.Join(dataDir, configFile)
		if _, err := os.Stat(src.file); err != nil {
			return cfg, src, nil
		}
	}
	base, err := config.Load(src.file)
	if err != nil {
		return config.Config{}, configSource{}, err
	}
	cfg, err := src.overlay(base)
	if err != nil {
		return config.Config{}, configSource{}, err
	}
	return cfg, src, nil
}

// newLogger returns the server's logger, writing slog text lines to w
// through a logbuf.Writer: info lines (one per request) are written in
// batches, at most logDelay late; warnings and errors at once. The caller
// closes the Writer to write what is held.
func newLogger(level string, w io.Writer) (*slog.Logger, *logbuf.Writer) {
	var l slog.Level
	l.UnmarshalText([]byte(level)) // validated by config
	lb := logbuf.New(w, logDelay, logBatch)
	return slog.New(logbuf.Handler(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: l}), lb)), lb
}

// defaultGOGC is the server's GC target when the GOGC environment
// variable does not set one.
const defaultGOGC = 200

// The access log's batching: one write(2) per logDelay or logBatch bytes
// instead of one per request (docs/decisions/0006-batched-access-log.md).
const (
	logDelay = 100 * time.Millisecond
	logBatch = 64 << 10
)

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, src, err := loadConfig("serve", args, getenv, stderr)
	if err != nil {
		return err
	}
	if getenv("GOGC") == "" {
		// Most of a request's garbage is net/http's; with the heap this
		// small, GOGC=100 collects every few thousand requests.
		// docs/decisions/0008-gogc-200.md weighs CPU against memory.
		debug.SetGCPercent(defaultGOGC)
	}
	log, logw := newLogger(cfg.Log.Level, stderr)
	defer logw.Close()

	dataDir, err := cfg.Server.ResolveDataDir(getenv)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}

	remote := &remoteStorage{counters: &storage.Counters{}}
	tree, err := openTree(cfg, dataDir, remote)
	if err != nil {
		return err
	}
	defer tree.Close()

	idx, err := index.Open(ctx, filepath.Join(dataDir, indexFile))
	if err != nil {
		return err
	}
	defer idx.Close()
	if p := idx.SetAside(); p != "" {
		log.Warn("the index was damaged: set aside, a new one is being built", "old", p)
	}
	scanner := newScanner(cfg, tree, idx, log)
	// The scanner stops before the index closes (defers run last first).
	scanCtx, stopScan := context.WithCancel(context.WithoutCancel(ctx))
	scanDone := make(chan struct{})
	defer func() { stopScan(); <-scanDone }()
	go func() {
		defer close(scanDone)
		scanner.Serve(scanCtx)
	}()

	var trusted []netip.Prefix
	for _, p := range cfg.Server.TrustedProxies {
		pr, _ := config.ParsePrefix(p) // validated by config
		trusted = append(trusted, pr)
	}

	authSvc, err := openAuth(ctx, cfg, dataDir, log)
	if err != nil {
		return err
	}
	if authSvc != nil {
		defer authSvc.Close()
	} else {
		log.Warn("authentication is off (auth.mode = \"none\"): anyone who reaches this server can use and administer it")
	}

	pacer := newPacer(cfg)
	defer pacer.Close()

	listen := cfg.ListenAddr(authSvc != nil && authSvc.Count() > 0)
	pols := newPolicySet(cfg)
	nd := newNode(cfg, pacer, idx, scanner, authSvc, log)
	peersCtx, stopPeers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPeers()
	go nd.run(peersCtx)
	reg := newMetrics(pacer, scanner, remote)
	registerNode(reg, nd, pacer)
	handler := web.New(web.Options{
		Tree: tree,
		Stream: stream.NewPaced(time.Duration(cfg.Server.WriteStall), stream.Pacing{
			Pacer: pacer,
			Peaks: stream.NewPeaks(time.Duration(cfg.Pace.Window), 0),
		}),
		Pace:           pols.of,
		Cache:          stream.NewCache(stream.CacheLimits{}),
		Logger:         log,
		Node:           nd,
		Place:          nd.placer(),
		Direct:         directURL(cfg.Cluster),
		MediaOrigins:   mediaOrigins(cfg.Cluster),
		TrustedProxies: trusted,
		AccessLog:      cfg.Log.Access,
		AccessLogTo:    logw,
		WriteStall:     time.Duration(cfg.Server.WriteStall),
		Metrics:        reg.Handler(),
		Index:          idx,
		Scanner:        scanner,
		Covers: cover.New(cover.Options{Index: idx, Tree: tree, Dir: filepath.Join(dataDir, "covers"),
			Logger: log}),
		Auth:       authSvc,
		SessionTTL: time.Duration(cfg.Auth.SessionTTL),
		HSTS:       cfg.TLS.HSTS,
		Admin:      newAdminHost(src, cfg, tree, scanner, pacer, pols, log),
		// A form's body comes right after its headers.
		BodyTimeout: time.Duration(cfg.Server.ReadHeaderTimeout),
		LocalHosts:  authSvc == nil && isLoopback(listen),
	})

	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: time.Duration(cfg.Server.ReadHeaderTimeout),
		IdleTimeout:       time.Duration(cfg.Server.IdleTimeout),
		MaxHeaderBytes:    cfg.Server.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ConnContext:       stream.ConnContext, // lets stream cork file bodies
		// No WriteTimeout: it would cut every stream longer than it. The
		// stream package sets a stall deadline per write instead.
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	serveErr := make(chan error, 1)
	scheme := "http"
	if cfg.TLS.Cert != "" {
		// HTTP/2 comes with TLS. Paced streams then pace in their
		// handlers: the pacer's loop takes over plain TCP connections only.
		scheme = "https"
		go func() { serveErr <- srv.ServeTLS(ln, cfg.TLS.Cert, cfg.TLS.Key) }()
	} else {
		go func() { serveErr <- srv.Serve(ln) }()
	}
	nd.state.Start()

	url := scheme + "://" + displayAddr(ln.Addr())
	log.Info("serving", "url", url, "libraries", strings.Join(tree.Names(), ","), "data", dataDir, "version", version)
	libs := "libraries"
	if len(tree.Names()) == 1 {
		libs = "library"
	}
	// Before the serving line, which tests (and scripts) wait for.
	if authSvc != nil {
		if tok := authSvc.SetupToken(); tok != "" {
			// The one secret the log carries on purpose: it works once,
			// and only while no user exists.
			setup := url + "/setup?token=" + tok
			log.Warn("no users yet: open the setup link to create the administrator (or run `mustserv user add NAME --role admin`)", "setup", setup)
			fmt.Fprintf(stdout, "mustserv: no users yet: create the administrator at %s\n", setup)
		}
	}
	fmt.Fprintf(stdout, "mustserv: serving %d %s at %s/\n", len(tree.Names()), libs, url)

	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}

	// Drain: /readyz turns 503 and stays so for the drain delay, while
	// the node still takes requests (balancers notice and stop sending);
	// then the listener closes, running streams finish within the grace
	// period, and whatever is left is cut.
	nd.state.Stop()
	grace := time.Duration(cfg.Server.ShutdownGrace)
	if d := time.Duration(cfg.Cluster.DrainDelay); d > 0 {
		log.Info("draining", "delay", d, "grace", grace)
		select {
		case <-time.After(d):
		case err := <-serveErr:
			return err
		}
	}
	log.Info("shutting down", "grace", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("grace period over, closing remaining connections", "err", err)
		srv.Close()
	}
	// Paced streams left net/http with their connections: they get what
	// is left of the grace period.
	if err := pacer.Shutdown(sctx); err != nil {
		log.Warn("grace period over, closing remaining paced streams", "streams", pacer.Stats().Handed)
	}
	log.Info("stopped")
	return nil
}

// remoteStorage is what remote libraries' files count into and cache in,
// for /metrics.
type remoteStorage struct {
	counters *storage.Counters
	cache    *storage.Cache // nil: no range cache
}

// openTree opens cfg's libraries, remote ones with cfg's [storage]
// settings: their range cache lives in data_dir unless placed elsewhere.
// rs, if not nil, gets the counters the remote files use and the cache.
func openTree(cfg config.Config, dataDir string, rs *remoteStorage) (*library.Tree, error) {
	st := cfg.Storage
	opts := library.Options{
		Remote:  storage.RemoteOptions{ReadAhead: st.ReadAhead, Stall: time.Duration(st.Timeout)},
		Timeout: time.Duration(st.Timeout),
	}
	if rs != nil {
		opts.Remote.Counters = rs.counters
	}
	if st.CacheSize > 0 {
		dir := st.CacheDir
		if dir == "" {
			dir = filepath.Join(dataDir, "range-cache")
		}
		c, err := storage.NewCache(dir, st.CacheSize)
		if err != nil {
			return nil, fmt.Errorf("storage.cache_dir: %w", err)
		}
		opts.Remote.Cache = c
		if rs != nil {
			rs.cache = c
		}
	}
	return library.OpenWith(cfg.Libraries, opts)
}

// libraryRoots maps each library to where it lives (a folder or a URL),
// as the scanner wants it.
func libraryRoots(libs []config.Library) map[string]string {
	roots := make(map[string]string, len(libs))
	for _, l := range libs {
		roots[l.Name] = l.Path
		if l.Remote() {
			roots[l.Name] = l.Where()
		}
	}
	return roots
}

// indexFile is the index's name in the data directory.
const indexFile = "index.db"

// newScanner builds the scanner of cfg's libraries and [scan] section.
func newScanner(cfg config.Config, tree *library.Tree, idx *index.Index, log *slog.Logger) *scan.Scanner {
	return scan.New(scan.Options{
		Index:    idx,
		Tree:     tree,
		Roots:    libraryRoots(cfg.Libraries),
		Workers:  cfg.Scan.Workers,
		Probe:    probe.Options{Window: time.Duration(cfg.Pace.Window)},
		Interval: time.Duration(cfg.Scan.Interval),
		Watch:    cfg.Scan.Watch,
		Logger:   log,
	})
}

// runScan scans every library into the index once, showing progress on
// stderr (one updating line on a terminal, a line every few seconds
// otherwise), and prints the outcome.
func runScan(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, _, err := loadConfig("scan", args, getenv, stderr)
	if err != nil {
		return err
	}
	dataDir, err := cfg.Server.ResolveDataDir(getenv)
	if err != nil {
		return err
	}
	tree, err := openTree(cfg, dataDir, nil)
	if err != nil {
		return err
	}
	defer tree.Close()
	path := filepath.Join(dataDir, indexFile)
	idx, err := index.Open(ctx, path)
	if err != nil {
		return err
	}
	defer idx.Close()
	if p := idx.SetAside(); p != "" {
		fmt.Fprintf(stderr, "mustserv scan: the index was damaged: set aside as %s, building a new one\n", p)
	}
	// Problems are in Progress().Errors, printed below: the log would
	// repeat them in the middle of the progress line.
	scanner := newScanner(cfg, tree, idx, slog.New(slog.DiscardHandler))
	done := make(chan error, 1)
	go func() { done <- scanner.Run(ctx) }()
	// What the index held before is what a rescan expects to see: the
	// progress bar's 100 %. A first scan has no bar, only counts.
	expect, err := idx.Count(ctx, "")
	if err != nil {
		return err
	}
	err = showProgress(scanner, expect, done, stderr)
	p := scanner.Progress()
	for _, e := range p.Errors {
		fmt.Fprintln(stderr, "mustserv scan:", e)
	}
	fmt.Fprintf(stdout, "mustserv: scanned %d files in %s: %d probed, %d unchanged, %d failed, %d removed; index %s\n",
		p.Files, p.Finished.Sub(p.Started).Round(time.Millisecond), p.Probed, p.Unchanged, p.Failed, p.Removed, path)
	return err
}

// showProgress prints s's progress to w until done yields the outcome,
// with a bar of the files seen out of expect when expect is known.
func showProgress(s *scan.Scanner, expect int, done <-chan error, w io.Writer) error {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	every := 5 * time.Second
	if tty {
		every = 200 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	line := func() string {
		p := s.Progress()
		eta := ""
		if p.ETA > 0 {
			eta = ", ETA " + p.ETA.Round(time.Second).String()
		}
		return progressBar(p.Files, expect) + fmt.Sprintf("scanning %s: %d files, %d probed, %d unchanged, %d failed, %d queued, %.0f/s%s",
			p.Library, p.Files, p.Probed, p.Unchanged, p.Failed, p.Queued, p.Rate, eta)
	}
	for {
		select {
		case err := <-done:
			if tty {
				fmt.Fprint(w, "\r\033[K")
			}
			return err
		case <-t.C:
			if tty {
				fmt.Fprint(w, "\r\033[K"+line())
			} else {
				fmt.Fprintln(w, line())
			}
		}
	}
}

// progressBar draws "[=====>    ]  52 % " for n of total, or "" when the
// total is unknown.
func progressBar(n int64, total int) string {
	if total <= 0 {
		return ""
	}
	const width = 20
	frac := min(1, float64(n)/float64(total))
	full := int(frac * width)
	bar := strings.Repeat("=", full)
	if full < width {
		bar += ">" + strings.Repeat(" ", width-full-1)
	}
	return fmt.Sprintf("[%s] %3.0f%% ", bar, frac*100)
}

// isLoopback reports whether the listen address is a loopback IP or
// localhost.
func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// displayAddr turns a listening address into one a browser can open: an
// unspecified IP (":8000") becomes localhost.
func displayAddr(a net.Addr) string {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return a.String()
	}
	if ap.Addr().IsUnspecified() {
		return net.JoinHostPort("localhost", fmt.Sprint(ap.Port()))
	}
	return ap.String()
}

// newPacer builds the pacer of cfg's [pace] section.
func newPacer(cfg config.Config) *pace.Pacer {
	return pace.New(pace.Options{
		Uplink:    cfg.Pace.Uplink.BytesPerSecond(),
		PerClient: cfg.Pace.PerClient.BytesPerSecond(),
		Queue:     cfg.Pace.OnFull == "queue",
		Stall:     time.Duration(cfg.Server.WriteStall),
	})
}

// policyOf turns a library's pacing settings into stream's.
func policyOf(p config.Pace) stream.Policy {
	return stream.Policy{
		Enabled:     p.Enabled,
		Factor:      p.Factor,
		Burst:       time.Duration(p.Burst),
		UnknownRate: int64(p.UnknownRate),
	}
}

// registerStorage adds what remote libraries fetch and the range cache
// holds to r.
func registerStorage(r *metrics.Registry, rs *remoteStorage) {
	for _, m := range []struct {
		name, help string
		value      func(storage.Counts) int64
	}{
		{"mustserv_storage_fetches_total", "Requests for file bytes made to remote libraries' storage, retries included.",
			func(c storage.Counts) int64 { return c.Fetches }},
		{"mustserv_storage_fetched_bytes_total", "File bytes read from remote libraries' storage.",
			func(c storage.Counts) int64 { return c.FetchedBytes }},
		{"mustserv_storage_retries_total", "Requests to remote storage that repeated a failed one.",
			func(c storage.Counts) int64 { return c.Retries }},
		{"mustserv_storage_cache_hit_bytes_total", "File bytes of remote libraries read from the range cache instead.",
			func(c storage.Counts) int64 { return c.CacheHitBytes }},
	} {
		r.CounterFunc(m.name, m.help, func() float64 { return float64(m.value(rs.counters.Counts())) })
	}
	r.GaugeFunc("mustserv_storage_cache_bytes", "Bytes held by the range cache of remote files.", func() float64 {
		if rs.cache == nil {
			return 0
		}
		return float64(rs.cache.Stats().Bytes)
	})
}

// newMetrics builds the registry behind /metrics: the process, the
// scanner and the pacer.
func newMetrics(p *pace.Pacer, s *scan.Scanner, rs *remoteStorage) *metrics.Registry {
	r := metrics.New()
	metrics.RegisterProcess(r)
	registerStorage(r, rs)
	r.GaugeFunc("mustserv_scan_running", "1 while a full scan of the libraries runs.", func() float64 {
		if s.Progress().Running {
			return 1
		}
		return 0
	})
	r.GaugeFunc("mustserv_scan_files", "Media files seen by the running or last full scan.", func() float64 {
		return float64(s.Progress().Files)
	})
	r.GaugeFunc("mustserv_scan_failed", "Files the running or last full scan could not probe (indexed with the error).", func() float64 {
		return float64(s.Progress().Failed)
	})
	for _, m := range []struct {
		name, help string
		counter    bool
		value      func(pace.Stats) int64
	}{
		{"mustserv_streams_active", "Paced streams admitted and not finished.", false,
			func(s pace.Stats) int64 { return int64(s.Active) }},
		{"mustserv_streams_handed", "Paced streams driven by the pacer's loop (their handlers have returned).", false,
			func(s pace.Stats) int64 { return int64(s.Handed) }},
		{"mustserv_uplink_reserved_bits_per_second", "Sum of the peak bitrates reserved by active streams.", false,
			func(s pace.Stats) int64 { return s.Reserved * 8 }},
		{"mustserv_uplink_budget_bits_per_second", "The uplink budget; 0 when unlimited.", false,
			func(s pace.Stats) int64 { return s.Uplink * 8 }},
		{"mustserv_stream_sent_bytes_total", "Body bytes sent by paced streams (its rate is the delivered rate).", true,
			func(s pace.Stats) int64 { return s.Sent }},
		{"mustserv_stream_burst_bytes_total", "Body bytes sent at full speed in bursts.", true,
			func(s pace.Stats) int64 { return s.BurstSent }},
		{"mustserv_streams_admitted_total", "Streams admitted by the uplink budget.", true,
			func(s pace.Stats) int64 { return s.Admitted }},
		{"mustserv_streams_rejected_total", "Streams the uplink budget could not take: answered 503, or 307 to a peer with placement on.", true,
			func(s pace.Stats) int64 { return s.Rejected }},
		{"mustserv_streams_queued_total", "Streams that waited for the uplink budget (on_full = queue).", true,
			func(s pace.Stats) int64 { return s.Queued }},
		{"mustserv_stream_stalls_total", "Times a client took no bytes for longer than its burst's worth of media.", true,
			func(s pace.Stats) int64 { return s.Stalls }},
		{"mustserv_streams_cut_total", "Paced streams ended by the stall deadline or shutdown.", true,
			func(s pace.Stats) int64 { return s.Cut }},
		{"mustserv_streams_stopped_total", "Paced streams stopped by an admin.", true,
			func(s pace.Stats) int64 { return s.Stopped }},
	} {
		fn := func() float64 { return float64(m.value(p.Stats())) }
		if m.counter {
			r.CounterFunc(m.name, m.help, fn)
		} else {
			r.GaugeFunc(m.name, m.help, fn)
		}
	}
	return r
}
