package faultproxy

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httputil"
	"slices"
	"strconv"
	"strings"
)

// writeRequest sends req as http.ReadRequest parsed it, Host unchanged (an
// S3 signature covers it), and its body with the same framing.
func writeRequest(w *bufio.Writer, req *http.Request) error {
	fmt.Fprintf(w, "%s %s HTTP/%d.%d\r\n", req.Method, req.RequestURI, req.ProtoMajor, req.ProtoMinor)
	if req.Host != "" {
		fmt.Fprintf(w, "Host: %s\r\n", req.Host)
	}
	if err := writeFields(w, req.Header, req.TransferEncoding, req.Trailer); err != nil {
		return err
	}
	if req.Body == nil || req.Body == http.NoBody {
		return w.Flush()
	}
	_, err := copyBody(w, req.Body, chunked(req.TransferEncoding),
		func() http.Header { return req.Trailer }, 0)
	return err
}

// writeHead writes the status line and header of resp.
func writeHead(w *bufio.Writer, resp *http.Response) error {
	fmt.Fprintf(w, "HTTP/%d.%d %s\r\n", resp.ProtoMajor, resp.ProtoMinor, resp.Status)
	return writeFields(w, resp.Header, resp.TransferEncoding, resp.Trailer)
}

// writeFields writes a header and the blank line ending it, putting back
// the Transfer-Encoding and Trailer fields that net/http takes out of the
// header when it parses a message.
func writeFields(w *bufio.Writer, h http.Header, te []string, trailer http.Header) error {
	if err := h.Write(w); err != nil {
		return err
	}
	if chunked(te) {
		w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if len(trailer) > 0 {
		names := slices.Sorted(maps.Keys(trailer))
		fmt.Fprintf(w, "Trailer: %s\r\n", strings.Join(names, ", "))
	}
	_, err := w.WriteString("\r\n")
	return err
}

// chunked reports whether a parsed message's body was chunked.
func chunked(te []string) bool { return slices.Contains(te, "chunked") }

// copyBody copies a decoded body from r to w, chunked again if it was,
// flushing after every read so that a body trickles through no faster than
// it comes. With limit > 0 it stops after limit bytes and reports cut; a
// shorter body is copied whole. trailer is called once the body has been
// read, when net/http has filled in the trailer.
func copyBody(w *bufio.Writer, r io.Reader, isChunked bool, trailer func() http.Header, limit int64) (cut bool, err error) {
	var dst io.Writer = w
	var cw io.WriteCloser
	if isChunked {
		cw = httputil.NewChunkedWriter(w)
		dst = cw
	}
	buf := make([]byte, 32<<10)
	var sent int64
	for {
		p := buf
		if limit > 0 && limit-sent < int64(len(p)) {
			p = p[:limit-sent]
		}
		n, rerr := r.Read(p)
		if n > 0 {
			if _, err := dst.Write(p[:n]); err != nil {
				return false, err
			}
			if err := w.Flush(); err != nil {
				return false, err
			}
			sent += int64(n)
		}
		if limit > 0 && sent == limit {
			return true, nil
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return false, rerr
		}
	}
	if isChunked {
		cw.Close() // the last chunk, "0\r\n"
		if err := trailer().Write(w); err != nil {
			return false, err
		}
		w.WriteString("\r\n")
	}
	return false, w.Flush()
}

// rewriteHead applies the header faults of f to resp.
func rewriteHead(resp *http.Response, f Fault) {
	if f.ETag != "" {
		resp.Header.Set("ETag", f.ETag)
	}
	if f.WrongContentRange && resp.StatusCode == http.StatusPartialContent {
		if v, ok := shiftContentRange(resp.Header.Get("Content-Range")); ok {
			resp.Header.Set("Content-Range", v)
		}
	}
}

// shiftContentRange moves the range of a Content-Range value
// ("bytes first-last/size") one byte earlier, or one byte later when it
// starts at 0, keeping its length. It reports false for any other value
// (multipart 206 answers carry their ranges in the body).
func shiftContentRange(v string) (string, bool) {
	rng, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return "", false
	}
	rng, size, ok := strings.Cut(rng, "/")
	if !ok {
		return "", false
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return "", false
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil {
		return "", false
	}
	d := int64(-1)
	if first == 0 {
		d = 1
	}
	return fmt.Sprintf("bytes %d-%d/%s", first+d, last+d, size), true
}
