// Package static serves the project's embedded web files (the browser
// client, the demo page): one file per handler, with a content type from
// its name, an ETag for conditional requests, a precompressed gzip form
// for clients that accept it, and Cache-Control: no-cache so that a
// browser revalidates instead of running a stale client.
package static

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// File returns a handler that serves data as the file name (only its
// extension matters: it sets the content type).
func File(name string, data []byte) http.Handler {
	sum := sha256.Sum256(data)
	f := &file{
		name:  name,
		data:  data,
		etag:  `"` + hex.EncodeToString(sum[:8]) + `"`,
		ctype: mime.TypeByExtension(path.Ext(name)),
	}
	switch path.Ext(name) {
	case ".js", ".mjs":
		f.ctype = "text/javascript; charset=utf-8" // mime's table varies by system
	case ".html":
		f.ctype = "text/html; charset=utf-8"
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // a valid level: no error
	_, _ = zw.Write(data)                                    // writes to memory: no error
	_ = zw.Close()
	if buf.Len() < len(data) {
		f.gzipped = buf.Bytes()
	}
	return f
}

type file struct {
	name    string
	data    []byte
	gzipped []byte // nil when gzip does not make it smaller
	etag    string
	ctype   string
}

func (f *file) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	if f.ctype != "" {
		h.Set("Content-Type", f.ctype)
	}
	data, etag := f.data, f.etag
	if f.gzipped != nil {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			data, etag = f.gzipped, strings.TrimSuffix(f.etag, `"`)+`-gz"`
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", etag)
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(data))
}

func acceptsGzip(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			continue
		}
		if q, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if v, err := strconv.ParseFloat(q, 64); err == nil && v == 0 {
				return false // "gzip;q=0": not acceptable
			}
		}
		return true
	}
	return false
}
