package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// metricsClient scrapes the servers' /metrics. Its own connections are few
// and short-lived.
var metricsClient = &http.Client{Timeout: 5 * time.Second}

// parseMetrics reads Prometheus text exposition and returns each sample's
// value summed over its label sets, by metric name. Comments, blank lines
// and unparsable lines are skipped.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			name, rest = line[:i], line[j+1:]
		} else if i := strings.IndexAny(line, " \t"); i >= 0 {
			name, rest = line[:i], line[i:]
		} else {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		out[name] += v
	}
	return out, sc.Err()
}

// scrape reads one /metrics URL.
func scrape(ctx context.Context, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := metricsClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return parseMetrics(resp.Body)
}

// scrapeSum reads every URL and sums the values by name; it fails if any
// URL fails.
func scrapeSum(ctx context.Context, urls []string) (map[string]float64, error) {
	if len(urls) == 0 {
		return nil, fmt.Errorf("no /metrics URL (see -metrics)")
	}
	sum := map[string]float64{}
	for _, u := range urls {
		m, err := scrape(ctx, u)
		if err != nil {
			return nil, err
		}
		for k, v := range m {
			sum[k] += v
		}
	}
	return sum, nil
}

// scrapeAll is scrapeSum for the best-effort scrapes of a load run: nil
// when there are no URLs or one fails.
func scrapeAll(urls []string) map[string]float64 {
	if len(urls) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := scrapeSum(ctx, urls)
	if err != nil {
		return nil
	}
	return m
}
