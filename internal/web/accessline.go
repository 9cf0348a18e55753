package web

import (
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// accessLine is one access-log record. appendTo writes it byte for byte
// as slog.TextHandler writes the same record (FuzzAccessLine compares
// them), without building an slog.Record: the access log is written once
// per request, and slog's general path costs about a twentieth of a small
// file's request.
type accessLine struct {
	time         time.Time
	method, path string
	status       int
	bytes        int64
	dur          time.Duration
	client, rng  string
	err          string
	hasErr       bool
}

func (l *accessLine) appendTo(b []byte) []byte {
	b = append(b, "time="...)
	b = appendRFC3339Millis(b, l.time)
	b = append(b, " level=INFO msg=request method="...)
	b = appendText(b, l.method)
	b = append(b, " path="...)
	b = appendText(b, l.path)
	b = append(b, " status="...)
	b = strconv.AppendInt(b, int64(l.status), 10)
	b = append(b, " bytes="...)
	b = strconv.AppendInt(b, l.bytes, 10)
	b = append(b, " dur="...)
	b = appendText(b, l.dur.String())
	b = append(b, " client="...)
	b = appendText(b, l.client)
	b = append(b, " range="...)
	b = appendText(b, l.rng)
	if l.hasErr {
		b = append(b, " err="...)
		b = appendText(b, l.err)
	}
	return append(b, '\n')
}

// record returns the line as an slog record.
func (l *accessLine) record() slog.Record {
	rec := slog.NewRecord(l.time, slog.LevelInfo, "request", 0)
	rec.AddAttrs(
		slog.String("method", l.method),
		slog.String("path", l.path),
		slog.Int("status", l.status),
		slog.Int64("bytes", l.bytes),
		slog.Duration("dur", l.dur),
		slog.String("client", l.client),
		slog.String("range", l.rng),
	)
	if l.hasErr {
		rec.AddAttrs(slog.String("err", l.err))
	}
	return rec
}

// appendRFC3339Millis is slog's time format: RFC 3339 with exactly three
// digits of milliseconds, truncated.
func appendRFC3339Millis(b []byte, t time.Time) []byte {
	const prefixLen = len("2006-01-02T15:04:05.000")
	n := len(b)
	// RFC3339Nano trims trailing zeros: a tenth of a millisecond more
	// keeps four digits, of which the fourth is dropped.
	t = t.Truncate(time.Millisecond).Add(time.Millisecond / 10)
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b[:n+prefixLen], b[n+prefixLen+1:]...)
}

// appendText appends s as slog.TextHandler writes a string value: as it
// is, or Go-quoted when it is empty or holds a space, '=', '"', a control
// character or a rune that is not printable.
func appendText(b []byte, s string) []byte {
	if needsQuoting(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

func needsQuoting(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == ' ' || c == '=' || c == '"' {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}

// lineBufs recycles the buffers access lines are formatted in.
var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}
