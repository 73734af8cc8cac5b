package main

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/lily-go/lily/transport"
)

// FuzzParseFrame checks the fast frame parser against transport.Decode: it
// never panics, and on every frame the strict decoder accepts, both agree
// on what the bench reads (type, sequence, id, code).
func FuzzParseFrame(f *testing.F) {
	seeds := []transport.Frame{
		{Type: transport.TypeAcknowledge, Sequence: 7, ID: 3},
		{Type: transport.TypeAcknowledge, Sequence: 0, ID: 1 << 40},
		{Type: transport.TypeServerMessage, Sequence: 1 << 33, Payload: []byte(`{"_":"Increment"}`)},
		{Type: transport.TypeSnapshot, Sequence: 9, State: []byte(`{"_":"Counter","0":9}`), Epoch: "e"},
		{Type: transport.TypeError, Code: transport.CodeRejected, Reason: "no", ID: 4},
	}
	for _, s := range seeds {
		for _, format := range []transport.Format{transport.FormatJSON, transport.FormatMsgPack} {
			if format == transport.FormatMsgPack && s.Payload != nil {
				s.Payload = []byte{0x81, 0xa1, '_', 0xa9, 'I', 'n', 'c', 'r', 'e', 'm', 'e', 'n', 't'}
			}
			if format == transport.FormatMsgPack && s.State != nil {
				s.State = []byte{0x80}
			}
			b, err := transport.Encode(s, format)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte(`{"type":"acknowledge","sequence":12,"id":3} trailing`))
	f.Add([]byte(`{"type":"server_message","sequence":99999999999999999999999,"payload":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, fastErr := parseFrame(data, false)
		strict, err := transport.Decode(data, transport.DetectFormat(data))
		if err != nil {
			return // not a frame a server sends
		}
		if fastErr != nil {
			t.Fatalf("parseFrame refused a valid frame %q: %v", data, fastErr)
		}
		if fast.typ != strict.Type || fast.seq != strict.Sequence || fast.id != strict.ID || fast.code != string(strict.Code) {
			t.Fatalf("parseFrame(%q) = %+v, transport.Decode says %+v", data, fast, strict)
		}
	})
}

// FuzzParseMetrics: the /metrics parser never panics on any text, and a
// sample line "name value" after any comment lines gives that value.
func FuzzParseMetrics(f *testing.F) {
	f.Add("HELP x y\nTYPE x counter", "lily_connections_open", 3.0)
	f.Add("a{b=\"}\"} 4", "x", -1.5)
	f.Add("broken{ 5\n\n\t", "go_memstats_heap_inuse_bytes", 1e9)
	f.Fuzz(func(t *testing.T, noise, name string, v float64) {
		_, _ = parseMetrics(strings.NewReader(noise)) // any text: no panic
		var b strings.Builder
		for _, line := range strings.Split(noise, "\n") {
			b.WriteString("# " + line + "\n")
		}
		b.WriteString(name + " " + strconv.FormatFloat(v, 'g', -1, 64) + "\n")
		if !validMetricName(name) || math.IsNaN(v) || b.Len() > 60000 {
			return
		}
		got, err := parseMetrics(strings.NewReader(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		if got[name] != v {
			t.Fatalf("parsed %s = %v, want %v", name, got[name], v)
		}
	})
}

func validMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}
