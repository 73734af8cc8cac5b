package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(config) bool
		wantErr string
	}{
		{"defaults", nil, nil, func(c config) bool {
			return c.listen == ":8080" && c.logLevel == "info" && c.logFormat == "text" && c.readLimit == 1<<20 && c.writeTimeout == 10*time.Second
		}, ""},
		{"flag", []string{"-listen", "127.0.0.1:9000"}, nil, func(c config) bool { return c.listen == "127.0.0.1:9000" }, ""},
		{"environment", nil, map[string]string{"LILY_LISTEN": ":9001", "LILY_LOG_FORMAT": "json", "LILY_WRITE_TIMEOUT": "3s"}, func(c config) bool {
			return c.listen == ":9001" && c.logFormat == "json" && c.writeTimeout == 3*time.Second
		}, ""},
		{"flag wins over environment", []string{"-listen=:1"}, map[string]string{"LILY_LISTEN": ":2"}, func(c config) bool { return c.listen == ":1" }, ""},
		{"origins", []string{"-allowed-origins", " https://a.example , b.example,"}, nil, func(c config) bool {
			o := c.origins()
			return len(o) == 2 && o[0] == "https://a.example" && o[1] == "b.example"
		}, ""},
		{"durability", []string{"-durability", "batch", "-data-dir", ""}, map[string]string{"LILY_PASSIVATE_AFTER": "1m"}, func(c config) bool {
			return c.durability == "batch" && c.dataDir == "" && c.passivateAfter == time.Minute && c.snapshotEvery == 1000 && c.retention == 10000
		}, ""},
		{"bad durability", nil, map[string]string{"LILY_DURABILITY": "maybe"}, nil, "-durability"},
		{"zero snapshot interval", []string{"-snapshot-every", "0"}, nil, nil, "-snapshot-every"},
		{"cluster", []string{"-cluster-name", "prod", "-journal", "postgres://lily@db:5432/lily", "-seeds", "a:7946, lily-headless.ns.svc:7946"}, nil, func(c config) bool {
			seeds := c.seedList()
			return c.clusterName == "prod" && len(seeds) == 2 && seeds[1] == "lily-headless.ns.svc:7946" && c.gossipPort == 7946
		}, ""},
		{"cluster without a shared journal", []string{"-cluster-name", "prod"}, nil, nil, "-journal postgres://"},
		{"journal that is not postgres", nil, map[string]string{"LILY_JOURNAL": "mysql://x"}, nil, "postgres:// URL"},
		{"bad level", []string{"-log-level", "loud"}, nil, nil, "-log-level"},
		{"bad format", nil, map[string]string{"LILY_LOG_FORMAT": "xml"}, nil, "-log-format"},
		{"bad env value", nil, map[string]string{"LILY_READ_LIMIT": "lots"}, nil, "LILY_READ_LIMIT"},
		{"non-positive limit", []string{"-outbox-bytes", "0"}, nil, nil, "must be positive"},
		{"stray argument", []string{"serve"}, nil, nil, "unexpected arguments"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("unexpected config %+v", c)
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	if got := envName("allowed-origins"); got != "LILY_ALLOWED_ORIGINS" {
		t.Fatalf("envName = %q", got)
	}
}
