package web

import (
	"bytes"
	"log/slog"
	"testing"
	"time"
)

// FuzzAccessLine checks that the access line formatted by hand is byte for
// byte what slog.TextHandler writes for the same record, whatever the
// strings (paths and Range headers come from clients: quotes, spaces,
// '=', control characters, invalid UTF-8, non-printable runes).
func FuzzAccessLine(f *testing.F) {
	f.Add("GET", "/stream/media/small.bin", 200, int64(4096), int64(31200), "127.0.0.1", "", "", false, int64(1764000000123456789))
	f.Add("HEAD", "/stream/a b/c=d.mp3", 206, int64(0), int64(1), "::1", "bytes=0-", "write: broken pipe", true, int64(0))
	f.Add("GET", "/stream/\"q\"/\x00\x7f\xff/é\u00a0\u200b\ufffd", 404, int64(-1), int64(-5), "", "bytes=\t1-2", "", true, int64(-1))
	f.Add("", "", 0, int64(0), int64(0), "\\", "\\\"", "\n", true, int64(253402300799999999))
	f.Fuzz(func(t *testing.T, method, path string, status int, n, dur int64, client, rng, errText string, hasErr bool, unixNano int64) {
		l := accessLine{
			time:   time.Unix(0, unixNano).UTC(),
			method: method, path: path, status: status, bytes: n,
			dur: time.Duration(dur), client: client, rng: rng,
			err: errText, hasErr: hasErr,
		}
		var want bytes.Buffer
		if err := slog.NewTextHandler(&want, nil).Handle(t.Context(), l.record()); err != nil {
			t.Skip(err) // a time slog cannot format
		}
		if got := l.appendTo(nil); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("line differs from slog's\n got: %q\nwant: %q", got, want.Bytes())
		}
	})
}
