package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/lily-go/lily/transport"
)

func TestParseFrame(t *testing.T) {
	frames := []struct {
		name string
		f    transport.Frame
	}{
		{"ack", transport.Frame{Type: transport.TypeAcknowledge, Sequence: 7, ID: 3}},
		{"ack without id", transport.Frame{Type: transport.TypeAcknowledge, Sequence: 7}},
		{"ack of a repeated id", transport.Frame{Type: transport.TypeAcknowledge, Sequence: 0, ID: 9}},
		{"ack large", transport.Frame{Type: transport.TypeAcknowledge, Sequence: 1<<63 + 5, ID: 1 << 40}},
		{"ack uint8 uint16", transport.Frame{Type: transport.TypeAcknowledge, Sequence: 200, ID: 60000}},
		{"server_message", transport.Frame{Type: transport.TypeServerMessage, Sequence: 12, Payload: []byte(`{"_":"Increment"}`)}},
		{"server_message large", transport.Frame{Type: transport.TypeServerMessage, Sequence: 1 << 33, Payload: []byte(`"` + strings.Repeat("x", 70000) + `"`)}},
		{"snapshot", transport.Frame{Type: transport.TypeSnapshot, Sequence: 4, State: []byte(`{"_":"Counter","0":4}`), Epoch: "e1"}},
		{"error", transport.Frame{Type: transport.TypeError, Code: transport.CodeRejected, Reason: "no", ID: 5}},
		{"push", transport.Frame{Type: transport.TypePush, Payload: []byte(`1`)}},
	}
	for _, format := range []transport.Format{transport.FormatJSON, transport.FormatMsgPack} {
		for _, tc := range frames {
			t.Run(format.String()+"/"+tc.name, func(t *testing.T) {
				data, err := transport.Encode(tc.f, format)
				if err != nil {
					t.Fatal(err)
				}
				want := inFrame{typ: tc.f.Type, seq: tc.f.Sequence, id: tc.f.ID, code: string(tc.f.Code), state: tc.f.State}
				for _, full := range []bool{false, true} {
					got, err := parseFrame(data, full)
					if err != nil {
						t.Fatalf("full=%v: %v", full, err)
					}
					if got.typ != want.typ || got.seq != want.seq || got.id != want.id || got.code != want.code || !bytes.Equal(got.state, want.state) {
						t.Fatalf("full=%v: got %+v, want %+v", full, got, want)
					}
				}
			})
		}
	}
}

// TestParseFrameOtherShapes checks that frames which are valid but not in
// the server's canonical shape go the slow way and still parse, and that
// broken ones fail rather than parse wrongly.
func TestParseFrameOtherShapes(t *testing.T) {
	cases := []struct {
		name string
		data string
		want inFrame
		err  bool
	}{
		{name: "keys reordered", data: `{"sequence":5,"type":"acknowledge","id":2}`, want: inFrame{typ: transport.TypeAcknowledge, seq: 5, id: 2}},
		{name: "white space", data: `{"type":"acknowledge","sequence": 5 ,"id":2}`, want: inFrame{typ: transport.TypeAcknowledge, seq: 5, id: 2}},
		{name: "extra field", data: `{"type":"acknowledge","sequence":5,"id":2,"x":1}`, want: inFrame{typ: transport.TypeAcknowledge, seq: 5, id: 2}},
		{name: "server_message payload first", data: `{"type":"server_message","payload":1,"sequence":9}`, want: inFrame{typ: transport.TypeServerMessage, seq: 9}},
		{name: "leading zero", data: `{"type":"acknowledge","sequence":05}`, err: true},
		{name: "fraction", data: `{"type":"acknowledge","sequence":5.5}`, err: true},
		{name: "beyond uint64", data: `{"type":"acknowledge","sequence":18446744073709551616}`, err: true},
		{name: "trailing garbage", data: `{"type":"acknowledge","sequence":5}x`, err: true},
		{name: "truncated", data: `{"type":"acknowledge","sequence":5`, err: true},
		{name: "server_message without payload", data: `{"type":"server_message","sequence":5}`, err: true},
		{name: "msgpack truncated ack", data: "\x83\xa4type\xabacknowledge\xa8sequence\x05\xa2id", err: true},
		{name: "msgpack wrong map size", data: "\x83\xa4type\xabacknowledge\xa8sequence\x05", err: true},
		{name: "msgpack short payload", data: "\x83\xa4type\xaeserver_message\xa8sequence\x05\xa7payload\xc4\x05ab", err: true},
		{name: "msgpack signed sequence", data: "\x82\xa4type\xabacknowledge\xa8sequence\xd0\x05", want: inFrame{typ: transport.TypeAcknowledge, seq: 5}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseFrame([]byte(tc.data), false)
			if tc.err {
				if err == nil {
					t.Fatalf("parsed %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.typ != tc.want.typ || got.seq != tc.want.seq || got.id != tc.want.id {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseFrameFastPathAllocations(t *testing.T) {
	for _, format := range []transport.Format{transport.FormatJSON, transport.FormatMsgPack} {
		ack, _ := transport.Encode(transport.Frame{Type: transport.TypeAcknowledge, Sequence: 123456, ID: 99}, format)
		msg, _ := transport.Encode(transport.Frame{Type: transport.TypeServerMessage, Sequence: 123456, Payload: []byte(`{"_":"Increment"}`)}, format)
		for _, data := range [][]byte{ack, msg} {
			allocs := testing.AllocsPerRun(100, func() {
				if _, err := parseFrame(data, false); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("%v: %v allocations per parse, want 0", format, allocs)
			}
		}
	}
}

func TestMessageEncoder(t *testing.T) {
	for _, format := range []transport.Format{transport.FormatJSON, transport.FormatMsgPack} {
		payload := []byte(`{"_":"Add","0":5}`)
		if format == transport.FormatMsgPack {
			payload = []byte{0x82, 0xa1, '_', 0xa3, 'A', 'd', 'd', 0xa1, '0', 0x05}
		}
		enc, err := newMessageEncoder(payload, format)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []uint64{1, 127, 128, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, 1<<64 - 1} {
			data := enc.appendFrame(nil, id)
			f, err := transport.Decode(data, format)
			if err != nil {
				t.Fatalf("%v id %d: %v", format, id, err)
			}
			if f.Type != transport.TypeClientMessage || f.ID != id || !bytes.Equal(f.Payload, payload) {
				t.Fatalf("%v id %d: decoded %+v", format, id, f)
			}
			want, _ := transport.Encode(transport.Frame{Type: transport.TypeClientMessage, Payload: payload, ID: id}, format)
			if !bytes.Equal(data, want) {
				t.Errorf("%v id %d: % x, transport encodes % x", format, id, data, want)
			}
		}
	}
}

func TestSeqRing(t *testing.T) {
	r := newSeqRing(4)
	if _, res := r.lookup(1); res != lookupPending {
		t.Fatalf("empty ring: %v", res)
	}
	r.publish(1, 100)
	r.publish(2, 200)
	if at, res := r.lookup(2); res != lookupFound || at != 200 {
		t.Fatalf("lookup(2) = %d, %v", at, res)
	}
	if _, res := r.lookup(3); res != lookupPending {
		t.Fatalf("lookup(3) = %v, want pending", res)
	}
	r.publish(5, 500) // overwrites 1
	if _, res := r.lookup(1); res != lookupEvicted {
		t.Fatalf("lookup(1) = %v, want evicted", res)
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 42
lily_connections_open 5
lily_closes_total{code="1000"} 3
lily_closes_total{code="1013",x="a b"} 2
process_cpu_seconds_total 1.5e+00 1700000000
bad line
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"go_goroutines": 42, "lily_connections_open": 5, "lily_closes_total": 5, "process_cpu_seconds_total": 1.5}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if len(m) != len(want) {
		t.Errorf("parsed %v", m)
	}
}

func BenchmarkParseFrame(b *testing.B) {
	for _, format := range []transport.Format{transport.FormatJSON, transport.FormatMsgPack} {
		msg, _ := transport.Encode(transport.Frame{Type: transport.TypeServerMessage, Sequence: 1234567, Payload: []byte(`{"_":"Add","0":5}`)}, format)
		for _, full := range []bool{false, true} {
			name := format.String() + "/fast"
			if full {
				name = format.String() + "/transport.Decode"
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := parseFrame(msg, full); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
