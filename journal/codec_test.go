package journal_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/lily-go/lily/journal"
)

func TestCodecRoundTrip(t *testing.T) {
	r := journal.Record{Sequence: 9, ClientID: "abc", MessageID: 3, Payload: []byte{0x81, 0xa1, '_'}}
	b, err := journal.EncodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := journal.DecodeRecord(b); err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("record round trip: %+v, %v", got, err)
	}
	s := journal.Snapshot{Sequence: 9, Model: []byte("m"), Applied: map[string]journal.Applied{"a": {MessageID: 1, Sequence: 2}}}
	b, err = journal.EncodeSnapshot(s)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := journal.DecodeSnapshot(b); err != nil || !reflect.DeepEqual(got, s) {
		t.Fatalf("snapshot round trip: %+v, %v", got, err)
	}
	b[len(b)-1] ^= 1
	if _, err := journal.DecodeSnapshot(b); err == nil {
		t.Fatal("a damaged snapshot decoded")
	}
}

func TestCheckAppend(t *testing.T) {
	rs := func(seqs ...uint64) []journal.Record {
		var out []journal.Record
		for _, s := range seqs {
			out = append(out, journal.Record{Sequence: s})
		}
		return out
	}
	cases := []struct {
		name string
		last uint64
		rs   []journal.Record
		ok   bool
	}{
		{"first", 0, rs(1, 2), true},
		{"follows", 5, rs(6), true},
		{"empty", 5, nil, true},
		{"rewrites", 5, rs(5), false},
		{"gap", 5, rs(7), false},
		{"gap inside", 5, rs(6, 8), false},
	}
	for _, tc := range cases {
		err := journal.CheckAppend("s", tc.last, tc.rs)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, journal.ErrConflict)) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	r, _ := journal.EncodeRecord(journal.Record{Sequence: 1, ClientID: "c", MessageID: 2, Payload: []byte("p")})
	s, _ := journal.EncodeSnapshot(journal.Snapshot{Sequence: 1, Model: []byte("m"), Applied: map[string]journal.Applied{"c": {MessageID: 2, Sequence: 1}}})
	f.Add(r)
	f.Add(s)
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if rec, err := journal.DecodeRecord(data); err == nil {
			again, err := journal.EncodeRecord(rec)
			if err != nil {
				t.Fatal(err)
			}
			if back, err := journal.DecodeRecord(again); err != nil || back.Sequence != rec.Sequence || back.ClientID != rec.ClientID {
				t.Fatalf("record does not survive a re-encode: %+v / %+v %v", rec, back, err)
			}
		}
		if snap, err := journal.DecodeSnapshot(data); err == nil {
			again, err := journal.EncodeSnapshot(snap)
			if err != nil {
				t.Fatal(err)
			}
			if back, err := journal.DecodeSnapshot(again); err != nil || back.Sequence != snap.Sequence || len(back.Applied) != len(snap.Applied) {
				t.Fatalf("snapshot does not survive a re-encode: %+v / %+v %v", snap, back, err)
			}
		}
	})
}
