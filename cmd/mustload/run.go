package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"mustserv/internal/loadgen"
)

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

// run is the whole program: main only adds signals and the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, out, summaryOnly, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil // -h: the usage is printed
	}
	if err != nil {
		return err
	}
	rep, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return usageError{err.Error()}
	}
	if out == "" {
		err = writeReport(stdout, rep, summaryOnly)
	} else {
		var f *os.File
		if f, err = os.Create(out); err != nil {
			return err
		}
		err = writeReport(f, rep, summaryOnly)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	printSummary(stderr, rep.Summary, ctx.Err() != nil)
	return nil
}

// writeReport writes the summary, indented, or the whole report on one
// line: a report of thousands of players with their traces is for jq.
func writeReport(w io.Writer, rep *loadgen.Report, summaryOnly bool) error {
	enc := json.NewEncoder(w)
	if summaryOnly {
		enc.SetIndent("", "  ")
		return enc.Encode(rep.Summary)
	}
	return enc.Encode(rep)
}

// printSummary writes a one-line summary for the person at the terminal.
func printSummary(w io.Writer, s loadgen.Summary, interrupted bool) {
	note := ""
	if interrupted {
		note = " (interrupted)"
	}
	fmt.Fprintf(w, "mustload: %d players%s: %d ok, %d rejected, %d failed; %d stall-free, %d stalls (%.1f s); "+
		"startup p50 %.0f ms, p95 %.0f ms; rate/bitrate median %.2f (%.2f-%.2f, %d players); %d bytes in %.1f s; "+
		"%d resumes, %d redirects\n",
		s.Players, note, s.OK, s.Rejected, s.Failed, s.StallFree, s.Stalls, s.StallSeconds,
		s.StartupMS.P50, s.StartupMS.P95, s.RateRatio.Median, s.RateRatio.Min, s.RateRatio.Max, s.RateRatio.N,
		s.Bytes, s.Duration, s.Resumes, s.Redirects)
}

const usage = `usage: mustload -url URL[@BITRATE] [-url ...] [flags]

Simulates media players against an HTTP server and prints a JSON report
(docs/mustload.md). BITRATE is the media's bitrate in bits/s, with an
optional k, M or G suffix (320k, 2.5M).

flags:
`

// parseArgs turns the command line into a run's configuration, the output
// file ("" for stdout) and whether to print only the summary.
func parseArgs(args []string, stderr io.Writer) (cfg loadgen.Config, out string, summaryOnly bool, err error) {
	fset := flag.NewFlagSet("mustload", flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() {
		fmt.Fprint(fset.Output(), usage)
		fset.PrintDefaults()
	}
	var urls []string
	cfg.Headers = map[string]string{}
	fset.Func("url", "`URL[@BITRATE]` to play; repeat for more (players take them in turn)", func(s string) error {
		urls = append(urls, s)
		return nil
	})
	bitrate := fset.String("bitrate", "", "`BITRATE` of URLs given without one")
	fset.IntVar(&cfg.Players, "players", 1, "number of players")
	fset.DurationVar(&cfg.Join, "join", 0, "interval between player starts (0: all at once)")
	watch := fset.String("watch", "30s", "playback time of each player: `DUR` or MIN-MAX (uniform)")
	fset.DurationVar(&cfg.SeekEvery, "seek-every", 0, "mean playback time between random seeks (0: none)")
	fset.DurationVar(&cfg.Startup, "startup", 2*time.Second, "media buffered before playback starts")
	fset.DurationVar(&cfg.Rebuffer, "rebuffer", time.Second, "media buffered before playback resumes after a stall")
	fset.DurationVar(&cfg.MaxBuffer, "max-buffer", 0, "stop reading while this much media is buffered (0: read greedily)")
	fset.DurationVar(&cfg.RateFrom, "rate-from", 10*time.Second, "measure each player's delivered rate from this long after its request")
	fset.Int64Var(&cfg.Seed, "seed", 1, "seed of the watch times, seek times and offsets")
	fset.DurationVar(&cfg.Timeout, "timeout", 0, "cap on the whole run (0: last start + 2 x the longest watch + 30s)")
	fset.StringVar(&cfg.LocalAddr, "local-addr", "", "source `IP` of the connections, or an IPv4 prefix to spread players over (127.0.0.0/24)")
	fset.Func("header", "request header `'K: V'`; repeatable", func(s string) error {
		k, v, err := parseHeader(s)
		if err != nil {
			return err
		}
		cfg.Headers[k] = v
		return nil
	})
	fset.BoolVar(&cfg.RetryRejected, "retry-rejected", false, "retry a 503 after its Retry-After")
	fset.IntVar(&cfg.Resume, "resume", 0, "re-request from the next byte, up to `N` times per player, after a body cut short, a failed connection or a 502/503/504 (0: fail)")
	fset.StringVar(&out, "out", "", "write the JSON report to `FILE` (default stdout)")
	fset.BoolVar(&summaryOnly, "summary", false, "print only the summary")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, "", false, err
		}
		return cfg, "", false, usageError{err.Error()}
	}
	if fset.NArg() > 0 {
		return cfg, "", false, usageError{fmt.Sprintf("unexpected argument %q", fset.Arg(0))}
	}
	if len(urls) == 0 {
		return cfg, "", false, usageError{"no -url given"}
	}
	var def int64
	if *bitrate != "" {
		if def, err = parseBitrate(*bitrate); err != nil {
			return cfg, "", false, usageError{"-bitrate: " + err.Error()}
		}
	}
	for _, s := range urls {
		t, err := parseTarget(s, def)
		if err != nil {
			return cfg, "", false, usageError{"-url: " + err.Error()}
		}
		cfg.URLs = append(cfg.URLs, t)
	}
	if cfg.WatchMin, cfg.WatchMax, err = parseWatch(*watch); err != nil {
		return cfg, "", false, usageError{"-watch: " + err.Error()}
	}
	return cfg, out, summaryOnly, nil
}

// parseTarget parses URL@BITRATE, or a URL alone that plays at def. The
// bitrate follows the last @, so a URL with user info still parses.
func parseTarget(s string, def int64) (loadgen.Target, error) {
	u := s
	br := def
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		if b, err := parseBitrate(s[i+1:]); err == nil {
			u, br = s[:i], b
		}
	}
	if u == "" {
		return loadgen.Target{}, fmt.Errorf("%q has no URL", s)
	}
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return loadgen.Target{}, fmt.Errorf("%q is not an http or https URL", u)
	}
	if br == 0 {
		return loadgen.Target{}, fmt.Errorf("%q has no bitrate: add @BITRATE (e.g. @320k) or give -bitrate", s)
	}
	return loadgen.Target{URL: u, Bitrate: br}, nil
}

// parseBitrate parses bits/s with an optional k, M or G suffix.
func parseBitrate(s string) (int64, error) {
	mult := 1.0
	num := s
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			mult, num = 1e3, s[:n-1]
		case 'M':
			mult, num = 1e6, s[:n-1]
		case 'G':
			mult, num = 1e9, s[:n-1]
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" || strings.ContainsAny(num, "xXpPnN_") {
		// ParseFloat also takes hex, "inf", "nan" and underscores: none
		// is a bitrate.
		return 0, fmt.Errorf("bitrate %q is not a number of bits/s (like 320k or 2.5M)", s)
	}
	v = math.Round(v * mult)
	if v < 1 || v > 1e12 {
		return 0, fmt.Errorf("bitrate %q is out of range", s)
	}
	return int64(v), nil
}

// parseWatch parses DUR or MIN-MAX.
func parseWatch(s string) (lo, hi time.Duration, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if lo, err = time.ParseDuration(a); err != nil {
		return 0, 0, err
	}
	hi = lo
	if isRange {
		if hi, err = time.ParseDuration(b); err != nil {
			return 0, 0, err
		}
	}
	if lo <= 0 || hi < lo {
		return 0, 0, fmt.Errorf("%q is not a positive duration or MIN-MAX range", s)
	}
	return lo, hi, nil
}

// parseHeader parses "Key: value".
func parseHeader(s string) (key, value string, err error) {
	k, v, ok := strings.Cut(s, ":")
	k = strings.TrimSpace(k)
	if !ok || k == "" || strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return "", "", fmt.Errorf("header %q is not 'Key: value'", s)
	}
	v = strings.TrimSpace(v)
	if strings.ContainsAny(v, "\r\n\x00") {
		return "", "", fmt.Errorf("header %q has a line break", s)
	}
	return k, v, nil
}
