package testutil

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lily-go/lily/transport"
)

// SSEClient is a raw client of the HTTP fallback for tests: an event stream
// it reads and keeps every frame of, decoded, and POSTs of frames as given.
type SSEClient struct {
	tb     testing.TB
	url    string // the store address with ?client_id=
	header http.Header
	cancel context.CancelFunc

	*FrameLog
	keepAlives atomic.Int32 // comment lines seen
	readErr    chan error   // the reader's final error
}

// DialSSE opens the event stream of url (http://host/ws/kind/name?client_id=ID)
// and starts reading it. It fails the test unless the server answers 200
// with an event stream; the stream is closed when the test ends.
func DialSSE(tb testing.TB, url string, header http.Header) *SSEClient {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := OpenSSE(ctx, url, header)
	if err != nil {
		cancel()
		tb.Fatalf("open event stream %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		tb.Fatalf("open event stream %s: HTTP %d %q: %s", url, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	c := &SSEClient{tb: tb, url: url, header: header, cancel: cancel, FrameLog: NewFrameLog(tb), readErr: make(chan error, 1)}
	go c.read(resp.Body)
	tb.Cleanup(cancel)
	return c
}

// OpenSSE sends the GET that opens an event stream and returns the
// response, whatever its status.
func OpenSSE(ctx context.Context, url string, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "text/event-stream")
	return http.DefaultClient.Do(req)
}

func (c *SSEClient) read(body io.ReadCloser) {
	defer body.Close()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var data bytes.Buffer
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() == 0 {
				continue
			}
			raw := bytes.TrimSuffix(data.Bytes(), []byte{'\n'})
			if event == "msgpack" {
				dec, err := base64.StdEncoding.DecodeString(string(raw))
				if err != nil {
					c.tb.Errorf("undecodable msgpack event %q: %v", raw, err)
				}
				raw = dec
			}
			f, err := transport.Decode(raw, transport.DetectFormat(raw))
			if err != nil {
				c.tb.Errorf("undecodable frame from the server %q: %v", raw, err)
			} else {
				c.Add(f)
			}
			data.Reset()
			event = ""
		case strings.HasPrefix(line, ":"):
			c.keepAlives.Add(1)
		case strings.HasPrefix(line, "data:"):
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
			data.WriteByte('\n')
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		}
	}
	err := sc.Err()
	if err == nil {
		err = io.EOF
	}
	c.readErr <- err
}

// Post POSTs body to the store address and returns the response's status.
func (c *SSEClient) Post(body []byte) int {
	c.tb.Helper()
	status, err := Post(c.url, c.header, body)
	if err != nil {
		c.tb.Fatalf("post: %v", err)
	}
	return status
}

// Post POSTs body to url with header and returns the response's status.
func Post(url string, header http.Header, body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Write POSTs one raw frame and fails the test unless the server takes it
// (204).
func (c *SSEClient) Write(data []byte) {
	c.tb.Helper()
	if status := c.Post(data); status != http.StatusNoContent {
		c.tb.Fatalf("post: HTTP %d, want 204", status)
	}
}

// WriteFrame encodes f in format and POSTs it.
func (c *SSEClient) WriteFrame(f transport.Frame, format transport.Format) {
	c.tb.Helper()
	b, err := transport.Encode(f, format)
	if err != nil {
		c.tb.Fatal(err)
	}
	c.Write(b)
}

// WriteBatch POSTs JSON frames as one JSON array.
func (c *SSEClient) WriteBatch(frames ...[]byte) {
	c.tb.Helper()
	c.Write(append(append([]byte("["), bytes.Join(frames, []byte(","))...), ']'))
}

// KeepAlives returns the number of comment lines (keepalives) seen.
func (c *SSEClient) KeepAlives() int { return int(c.keepAlives.Load()) }

// Snapshot POSTs a resync and returns the snapshot that answers it.
func (c *SSEClient) Snapshot() transport.Frame {
	c.tb.Helper()
	c.WriteFrame(transport.Frame{Type: transport.TypeResync}, transport.FormatJSON)
	return c.NextOf(transport.TypeSnapshot)
}

// Closed waits for the stream to end and returns the reader's error
// (io.EOF when the server ended the response).
func (c *SSEClient) Closed() error {
	c.tb.Helper()
	select {
	case err := <-c.readErr:
		return err
	case <-time.After(DefaultWait):
		c.tb.Fatal("the event stream did not end")
		return nil
	}
}

// Close ends the stream from the client's side.
func (c *SSEClient) Close() { c.cancel() }
