package stream

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"mustserv/internal/media"
	"mustserv/internal/pace"
	"mustserv/internal/storage"
)

// Policy is how one library's files are paced: config.Pace after the
// library's overrides, in the units pace works in.
type Policy struct {
	Enabled bool
	// Factor multiplies the peak bitrate after the burst.
	Factor float64
	// Burst is the media time sent at full speed first.
	Burst time.Duration
	// UnknownRate paces a file whose bitrate is unknown, in bits/s.
	UnknownRate int64
}

// Pacing connects a Server to a pacer.
type Pacing struct {
	Pacer *pace.Pacer
	Peaks *Peaks
}

// NewPaced returns a Server that paces what ServePaced serves.
func NewPaced(stall time.Duration, p Pacing) *Server {
	return &Server{stall: stall, pacing: p}
}

// Who is what ServePaced needs to know about the request beyond the file.
type Who struct {
	// Client identifies the client for the per-client limit: a user, or
	// the address (after trusted proxies).
	Client string
	// User is the signed-in user's name, "" when unknown: the admin's
	// list of streams shows it (pace.StreamInfo.User).
	User string
	// Path is the item's virtual path ("Music/a.mp3"), what the admin's
	// list of streams calls the stream; "" shows the file's name.
	Path   string
	Policy Policy
	// Download asks for the file at full speed; the caller has checked
	// that the client may.
	Download bool
	// Rate, if not 0, is the file's pace rate in bit/s (PeakRate) as the
	// caller knows it (the library index); 0: Peaks probes the file.
	Rate int64
	// Elsewhere, if not nil, is asked where to send the stream when the
	// uplink budget cannot take it: a URL answers 307 to it instead of
	// 503 (placement on a peer node). need is the stream's rate in bit/s.
	Elsewhere func(need int64) string
}

// ServePaced serves f like Serve and paces the body of a GET of an audio
// or video file: a burst of Policy.Burst of media at full speed, then the
// file's peak bitrate times Policy.Factor, within the pacer's budget. When
// the budget is full the answer is 503 with Retry-After.
//
// On a plain TCP connection the body is handed to the pacer's loop after
// the headers (with "Connection: close": the loop owns the connection from
// then on) and ServePaced returns at once; elsewhere it paces the body
// itself.
func (s *Server) ServePaced(w http.ResponseWriter, r *http.Request, f storage.File, fi fs.FileInfo, who Who) {
	if s.pacing.Pacer == nil || !who.Policy.Enabled || who.Download || r.Method != http.MethodGet {
		s.Serve(w, r, f, fi)
		return
	}
	if k := media.KindOf(fi.Name()); k != media.Audio && k != media.Video {
		s.Serve(w, r, f, fi)
		return
	}
	bps := who.Rate
	if bps == 0 && s.pacing.Peaks != nil {
		bps = s.pacing.Peaks.Rate(r.Context(), f, fi)
	}
	if bps <= 0 {
		bps = who.Policy.UnknownRate
	}
	rate := max(bps/8, 1)
	label := who.Path
	if label == "" {
		label = fi.Name()
	}
	a := pace.Admission{
		Client: who.Client,
		Rate:   rate,
		Factor: who.Policy.Factor,
		Burst:  int64(float64(rate) * who.Policy.Burst.Seconds()),
		Label:  label,
		User:   who.User,
	}
	s.serveFile(w, r, f, fi, &pacedBody{pacer: s.pacing.Pacer, admission: a, elsewhere: who.Elsewhere})
}

// pacedBody is the pacing state of one response.
type pacedBody struct {
	pacer     *pace.Pacer
	admission pace.Admission
	elsewhere func(need int64) string
	stream    *pace.Stream
	refused   bool
	// hand is the connection the pacer's loop takes the body over once
	// it is hijacked; nil: the body is paced in the handler.
	hand     *net.TCPConn
	hijacked bool
	// remote: the file is not an *os.File (a remote backend's): its body
	// cannot be handed to the loop, which sends with sendfile, and is
	// paced in the handler.
	remote bool
}

var errRefused = errors.New("stream refused: uplink budget full")

// admit runs when the response's status is known: only a body that is
// sent is paced, so a 304 or 416 is answered even when the budget is full.
// It reports false after answering 503 itself.
func (w *bodyWriter) admit(code int) bool {
	pb := w.paced
	if pb == nil || pb.stream != nil || pb.refused || (code != http.StatusOK && code != http.StatusPartialContent) {
		return true
	}
	h := w.Header()
	if strings.HasPrefix(h.Get("Content-Type"), "multipart/") {
		w.paced = nil // several ranges: rare, small, not worth pacing
		return true
	}
	st, err := pb.pacer.Admit(w.ctx, pb.admission)
	if err != nil {
		pb.refused = true
		for _, k := range []string{"Content-Length", "Content-Range", "Etag", "Last-Modified", "Accept-Ranges"} {
			h.Del(k)
		}
		retry := 10
		var full *pace.FullError
		if errors.As(err, &full) {
			retry = max(int((full.RetryAfter+time.Second-1)/time.Second), 1)
		}
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		if full != nil && pb.elsewhere != nil {
			if loc := pb.elsewhere(full.Need * 8); loc != "" {
				h.Set("Location", loc)
				w.ResponseWriter.WriteHeader(http.StatusTemporaryRedirect)
				io.WriteString(w.ResponseWriter, "This server is at its streaming capacity: the stream continues at another node.\n")
				return false
			}
		}
		h.Set("Retry-After", strconv.Itoa(retry))
		w.ResponseWriter.WriteHeader(http.StatusServiceUnavailable)
		msg := "The server is at its streaming capacity; try again in a few seconds.\n"
		if full != nil {
			msg = fmt.Sprintf("The server is at its streaming capacity (%s); try again in %d s.\n", full.Error(), retry)
		}
		io.WriteString(w.ResponseWriter, msg)
		return false
	}
	pb.stream = st
	if pace.CanHand && w.r.ProtoMajor == 1 && !pb.remote {
		if tc, ok := w.ctx.Value(connKey{}).(*net.TCPConn); ok {
			pb.hand = tc
			// The loop ends the connection with the body.
			h.Set("Connection", "close")
		}
	}
	return true
}

// pacedReadFrom sends a file body through the pacer. It reports whether
// it took the body; when not, the caller sends it unpaced.
func (w *bodyWriter) pacedReadFrom(lr *io.LimitedReader) (int64, bool, error) {
	pb := w.paced
	if pb.refused {
		return 0, true, errRefused
	}
	src, ok := lr.R.(*source)
	if pb.stream == nil || !ok {
		return 0, false, nil
	}
	osf, _ := src.f.(*os.File)
	st := pb.stream
	pb.stream = nil
	n := lr.N
	if tc := pb.hand; tc != nil && osf != nil {
		// Hijack writes the headers out; the body follows on the raw
		// connection, so nothing may be buffered in between.
		conn, _, err := http.NewResponseController(w.ResponseWriter).Hijack()
		pb.hijacked = err == nil
		if err == nil && conn != net.Conn(tc) {
			conn.Close()
			err = errors.New("hijacked a different connection")
		}
		if err != nil {
			st.Release()
			return 0, true, fmt.Errorf("hand over stream: %w", err)
		}
		if err := st.Hand(tc, osf, src.off, n, handedTo(w.ResponseWriter, n)); err != nil {
			return 0, true, err
		}
		src.off += n
		lr.N = 0
		return n, true, nil
	}
	m, err := st.Copy(w.ctx, unpaced{w}, src, n)
	lr.N -= m
	return m, true, err
}

// unpaced is the bodyWriter without its pacing: Copy's slices go through
// the plain chunked path (stall deadlines, sendfile).
type unpaced struct{ w *bodyWriter }

func (u unpaced) Write(p []byte) (int, error) { return u.w.Write(p) }

func (u unpaced) ReadFrom(r io.Reader) (int64, error) { return u.w.readFrom(r) }

// Handoff is implemented by response writers that account for a body (the
// access log's): a body handed to the pacer never passes through them.
// Handed tells them its size when it is handed over and returns what the
// pacer calls when it has been sent (or cut).
type Handoff interface {
	Handed(n int64) (done func(sent int64, err error))
}

// handedTo finds the Handoff among w and the writers it wraps.
func handedTo(w http.ResponseWriter, n int64) func(int64, error) {
	for w != nil {
		if h, ok := w.(Handoff); ok {
			return h.Handed(n)
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
	return nil
}
