package main

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/lily-go/lily/transport"
)

func TestParseFlags(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		err   string // "" = valid; else a part of the error
		check func(t *testing.T, c config)
	}{
		{name: "defaults", args: nil, check: func(t *testing.T, c config) {
			if c.kind != "counter" || c.stores != 1 || c.clients != 10 || c.sendersPerStore() != 10 || c.rate != 0 ||
				c.format != transport.FormatJSON || c.urls[0] != "ws://127.0.0.1:8080" || c.duration != 10*time.Second {
				t.Errorf("unexpected defaults: %+v", c)
			}
			if len(c.metricsURLs) != 1 || c.metricsURLs[0] != "http://127.0.0.1:8080/metrics" {
				t.Errorf("metrics URLs = %q", c.metricsURLs)
			}
		}},
		{name: "several urls", args: []string{"-url", "ws://127.0.0.1:1, wss://127.0.0.1:2/base/,ws://127.0.0.1:1"}, check: func(t *testing.T, c config) {
			if len(c.urls) != 3 {
				t.Errorf("urls = %q", c.urls)
			}
			if strings.Join(c.metricsURLs, " ") != "http://127.0.0.1:1/metrics https://127.0.0.1:2/metrics" {
				t.Errorf("metrics URLs = %q (one per node)", c.metricsURLs)
			}
		}},
		{name: "metrics off", args: []string{"-metrics", "off"}, check: func(t *testing.T, c config) {
			if len(c.metricsURLs) != 0 {
				t.Errorf("metrics URLs = %q", c.metricsURLs)
			}
		}},
		{name: "fan-out", args: []string{"-clients", "200", "-senders", "1", "-rate", "50"}, check: func(t *testing.T, c config) {
			if c.sendersPerStore() != 1 || c.rate != 50 {
				t.Errorf("%+v", c)
			}
		}},
		{name: "payload implies todo", args: []string{"-payload-bytes", "64", "-format", "msgpack"}, check: func(t *testing.T, c config) {
			if c.kind != "todo" || c.payload != 64 || c.format != transport.FormatMsgPack {
				t.Errorf("%+v", c)
			}
		}},
		{name: "payload at the limit", args: []string{"-payload-bytes", "200", "-kind", "todo"}},
		{name: "payload over the limit", args: []string{"-payload-bytes", "201"}, err: "todo.MaxTitle = 200"},
		{name: "payload with counter", args: []string{"-payload-bytes", "10", "-kind", "counter"}, err: "needs -kind todo"},
		{name: "negative payload", args: []string{"-payload-bytes", "-1"}, err: "-payload-bytes must not be negative"},
		{name: "unknown kind", args: []string{"-kind", "chat"}, err: "-kind must be counter or todo"},
		{name: "unknown format", args: []string{"-format", "xml"}, err: "-format must be json or msgpack"},
		{name: "http url", args: []string{"-url", "http://127.0.0.1:8080"}, err: "scheme must be ws or wss"},
		{name: "url with query", args: []string{"-url", "ws://127.0.0.1:8080/?x=1"}, err: "no query"},
		{name: "no url", args: []string{"-url", " , "}, err: "at least one"},
		{name: "zero stores", args: []string{"-stores", "0"}, err: "-stores must be at least 1"},
		{name: "zero clients", args: []string{"-clients", "0"}, err: "-clients must be at least 1"},
		{name: "more senders than clients", args: []string{"-clients", "3", "-senders", "4"}, err: "-senders must be between"},
		{name: "negative rate", args: []string{"-rate", "-1"}, err: "-rate must not be negative"},
		{name: "zero duration", args: []string{"-duration", "0s"}, err: "-duration must be positive"},
		{name: "negative warmup", args: []string{"-warmup", "-1s"}, err: "-warmup must not be negative"},
		{name: "zero connect rate", args: []string{"-connect-rate", "0"}, err: "-connect-rate must be positive"},
		{name: "bad store prefix", args: []string{"-store-prefix", "a/b"}, err: "-store-prefix"},
		{name: "too many clients", args: []string{"-stores", "100", "-clients", "181"}, err: "at most 18000"},
		{name: "most clients allowed", args: []string{"-stores", "100", "-clients", "180"}},
		{name: "connect-only", args: []string{"-connect-only", "5000", "-stores", "10", "-hold", "1s"}, check: func(t *testing.T, c config) {
			if c.connectOnly != 5000 || c.hold != time.Second {
				t.Errorf("%+v", c)
			}
		}},
		{name: "connect-only ignores load flags", args: []string{"-connect-only", "10", "-clients", "0"}},
		{name: "connect-only too many", args: []string{"-connect-only", "18001"}, err: "~19,000"},
		{name: "connect-only negative", args: []string{"-connect-only", "-1"}, err: "-connect-only must not be negative"},
		{name: "stray argument", args: []string{"extra"}, err: "unexpected arguments"},
		{name: "several errors at once", args: []string{"-stores", "0", "-kind", "x"}, err: "-kind must be"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseFlags(tc.args, io.Discard)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if tc.check != nil {
					tc.check(t, c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error = %v, want one containing %q", err, tc.err)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	var out strings.Builder
	_, err := parseFlags([]string{"-help"}, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	for _, name := range []string{"-url", "-kind", "-stores", "-clients", "-rate", "-senders", "-duration", "-warmup",
		"-payload-bytes", "-format", "-connect-rate", "-json-only", "-connect-only", "-hold", "-cpuprofile"} {
		if !strings.Contains(out.String(), "  "+name+" ") && !strings.Contains(out.String(), "  "+name+"\n") {
			t.Errorf("-help does not document %s", name)
		}
	}
	if code := realMain([]string{"-help"}, io.Discard, io.Discard); code != 0 {
		t.Errorf("realMain(-help) = %d, want 0", code)
	}
	if code := realMain([]string{"-stores", "0"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("realMain(bad flags) = %d, want 2", code)
	}
}

func TestURLs(t *testing.T) {
	if got := storeURL("ws://127.0.0.1:1/", "counter", "bench-0", "c1"); got != "ws://127.0.0.1:1/ws/counter/bench-0?client_id=c1" {
		t.Errorf("storeURL = %q", got)
	}
	if got, _ := metricsURL("wss://node:9/prefix"); got != "https://node:9/metrics" {
		t.Errorf("metricsURL = %q", got)
	}
}

func TestRingSize(t *testing.T) {
	for _, tc := range []struct{ stores, want int }{{1, 65536}, {16, 65536}, {100, 8192}, {18000, 64}} {
		if got := ringSize(tc.stores); got != tc.want {
			t.Errorf("ringSize(%d) = %d, want %d", tc.stores, got, tc.want)
		}
	}
}

func TestEffectiveInflight(t *testing.T) {
	for _, tc := range []struct {
		rate        float64
		maxInflight int
		want        uint64
	}{{0, 1024, 1}, {10, 1024, 100}, {0.5, 1024, 16}, {1000, 1024, 1024}, {1000, 8, 8}} {
		if got := effectiveInflight(config{rate: tc.rate, maxInflight: tc.maxInflight}); got != tc.want {
			t.Errorf("rate %g, max %d: %d, want %d", tc.rate, tc.maxInflight, got, tc.want)
		}
	}
}
