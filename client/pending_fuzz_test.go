package client_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/lily-go/lily/client"
	"github.com/lily-go/lily/transport"
)

// FuzzFilePendingStore feeds arbitrary file contents to Load: it never
// panics, and whatever it accepts is saved and loaded back unchanged.
func FuzzFilePendingStore(f *testing.F) {
	dir := f.TempDir()
	seed := filepath.Join(dir, "seed.json")
	good := client.PendingState{ClientID: "abc", NextID: 5, Format: transport.FormatMsgPack,
		Pending: []client.PendingMessage{{ID: 2, Payload: []byte{0x81}}, {ID: 4, Payload: []byte(`{"_":"Increment"}`)}}}
	if err := client.FilePendingStore(seed).Save(good); err != nil {
		f.Fatal(err)
	}
	data, err := os.ReadFile(seed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(`{"version":1,"client_id":"a","next_id":3,"pending":[{"id":2,"payload":"AQ=="},{"id":1,"payload":""}]}`))
	f.Add([]byte(`{"version":1,"client_id":"a/b","next_id":1}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, contents []byte) {
		path := filepath.Join(t.TempDir(), "pending.json")
		if err := os.WriteFile(path, contents, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := client.FilePendingStore(path).Load()
		if err != nil {
			return
		}
		again := filepath.Join(t.TempDir(), "again.json")
		if err := client.FilePendingStore(again).Save(st); err != nil {
			t.Fatalf("cannot save what was loaded: %v", err)
		}
		back, err := client.FilePendingStore(again).Load()
		if err != nil {
			t.Fatalf("cannot load what was saved: %v", err)
		}
		normalise := func(s client.PendingState) client.PendingState {
			for i := range s.Pending {
				if len(s.Pending[i].Payload) == 0 {
					s.Pending[i].Payload = nil
				}
			}
			if len(s.Pending) == 0 {
				s.Pending = nil
			}
			return s
		}
		if !reflect.DeepEqual(normalise(st), normalise(back)) {
			t.Fatalf("round trip changed the state: %+v became %+v", st, back)
		}
	})
}
