package cluster

import (
	"context"
	"log/slog"
	"strings"
)

// logWriter receives memberlist's log lines ("[WARN] memberlist: ...") and
// forwards them to slog at debug level: a failing node makes its peers log
// a lot. It reports the line memberlist writes when it refutes a "dead"
// message about this node, which nothing else surfaces.
type logWriter struct {
	log     *slog.Logger
	refuted func(line string)
}

func (w *logWriter) Write(b []byte) (int, error) {
	line := strings.TrimSpace(string(b))
	severity := ""
	if rest, ok := strings.CutPrefix(line, "["); ok {
		if s, msg, ok := strings.Cut(rest, "] "); ok {
			severity, line = s, msg
		}
	}
	w.log.Debug(line, "severity", severity)
	if strings.Contains(line, "Refuting a dead message") {
		w.refuted(line)
	}
	return len(b), nil
}

// demoteInfo lowers protoactor's info logs (topology updates, gossip state,
// connections) to debug, and to info the warnings and errors it logs
// whenever a member leaves or fails (the provider logs that once, at info);
// other warnings and errors keep their level.
type demoteInfo struct{ h slog.Handler }

// routine are protoactor's warnings and errors about the connections to a
// member that left or failed.
var routine = map[string]bool{
	"EndpointWriter lost connection":                    true,
	"EndpointWriter failed to connect":                  true,
	"EndpointWriter failed to create receive stream":    true,
	"EndpointWriter failed to receive connect response": true,
	"sendGossipForMember failed":                        true,
}

func demote(l slog.Level, msg string) slog.Level {
	switch {
	case l >= slog.LevelInfo && l < slog.LevelWarn:
		return slog.LevelDebug
	case l >= slog.LevelWarn && routine[msg]:
		return slog.LevelInfo
	}
	return l
}

func (d demoteInfo) Enabled(ctx context.Context, l slog.Level) bool {
	// The message is not known yet: ask for the lowest level l may become.
	return d.h.Enabled(ctx, demote(l, "")) || l >= slog.LevelWarn && d.h.Enabled(ctx, slog.LevelInfo)
}

func (d demoteInfo) Handle(ctx context.Context, r slog.Record) error {
	r.Level = demote(r.Level, r.Message)
	if !d.h.Enabled(ctx, r.Level) {
		return nil
	}
	return d.h.Handle(ctx, r)
}

func (d demoteInfo) WithAttrs(attrs []slog.Attr) slog.Handler {
	return demoteInfo{d.h.WithAttrs(attrs)}
}

func (d demoteInfo) WithGroup(name string) slog.Handler {
	return demoteInfo{d.h.WithGroup(name)}
}
