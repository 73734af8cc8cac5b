package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// probeTimeout bounds one health probe: the connection, the request and
// the answer.
const probeTimeout = 5 * time.Second

// probeMode runs lilyd's health-probe mode when args start with -probe:
//
//	lilyd -probe http://127.0.0.1:8080/readyz
//	lilyd -probe /readyz
//
// It GETs the URL and returns exit code 0 when the answer is 200 OK, 1
// otherwise (an error, a timeout, any other status), printing why on
// stderr. A bare path is asked of this machine at the port of -listen as
// lilyd would read it from LILY_LISTEN (":8080" when unset), so a container
// image's health check follows the port the node really serves on. Images
// without a shell or curl (distroless, scratch) use it as their
// HEALTHCHECK. ok is false when args are not a probe: lilyd then serves.
func probeMode(args []string, getenv func(string) string, stderr io.Writer) (code int, ok bool) {
	if len(args) == 0 || (args[0] != "-probe" && args[0] != "--probe" &&
		!strings.HasPrefix(args[0], "-probe=") && !strings.HasPrefix(args[0], "--probe=")) {
		return 0, false
	}
	target := ""
	if _, v, found := strings.Cut(args[0], "="); found {
		target, args = v, args[1:]
	} else if len(args) > 1 {
		target, args = args[1], args[2:]
	} else {
		args = nil
	}
	if target == "" || len(args) > 0 {
		fmt.Fprintln(stderr, "usage: lilyd -probe URL|PATH (exit 0 when GET answers 200 OK, 1 otherwise)")
		return 2, true
	}
	url, err := probeURL(target, getenv(envName("listen")))
	if err != nil {
		fmt.Fprintln(stderr, "lilyd -probe:", err)
		return 2, true
	}
	if err := probe(url, probeTimeout); err != nil {
		fmt.Fprintln(stderr, "lilyd -probe:", err)
		return 1, true
	}
	return 0, true
}

// probeURL returns the URL a probe asks: target itself when it is an
// http(s) URL, else target as a path on 127.0.0.1 at the port of listen
// (":8080" when empty); a listen address with a specific host uses it.
func probeURL(target, listen string) (string, error) {
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		return target, nil
	}
	if !strings.HasPrefix(target, "/") {
		return "", fmt.Errorf("%q is neither an http:// URL nor a path", target)
	}
	if listen == "" {
		listen = ":8080"
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("LILY_LISTEN %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + target, nil
}

// probe GETs url and returns nil when it answers 200 OK within timeout.
func probe(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
