package client_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/lily-go/lily/client"
	"github.com/lily-go/lily/transport"
)

func TestFilePendingStoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pending.json")
	s := client.FilePendingStore(path)

	got, err := s.Load()
	if err != nil || !reflect.DeepEqual(got, client.PendingState{}) {
		t.Fatalf("load of a missing file: %+v, %v; want the zero state", got, err)
	}
	states := []client.PendingState{
		{ClientID: "abc", NextID: 1, Format: transport.FormatJSON, Pending: []client.PendingMessage{}},
		{ClientID: "abc", NextID: 4, Format: transport.FormatJSON, Pending: []client.PendingMessage{
			{ID: 2, Payload: []byte(`{"_":"Increment"}`)},
			{ID: 3, Payload: []byte(`{"_":"Add","0":5}`)},
		}},
		{ClientID: "abc", NextID: 9, Format: transport.FormatMsgPack, Pending: []client.PendingMessage{
			{ID: 8, Payload: []byte{0x81, 0xa1, '_', 0xa9, 'I', 'n', 'c', 'r', 'e', 'm', 'e', 'n', 't'}},
		}},
	}
	for _, want := range states {
		if err := s.Save(want); err != nil {
			t.Fatal(err)
		}
		got, err := client.FilePendingStore(path).Load()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip: got %+v, want %+v", got, want)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("files left in the directory: %v, want pending.json only", entries)
	}
}

func TestFilePendingStoreCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pending.json")
	if err := os.WriteFile(path, []byte(`{"version":1,`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := client.FilePendingStore(path).Load(); err == nil {
		t.Fatal("load of a truncated file: no error")
	}
	if err := os.WriteFile(path, []byte(`{"version":7}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := client.FilePendingStore(path).Load(); err == nil {
		t.Fatal("load of an unknown version: no error")
	}
}

func BenchmarkFilePendingStoreSave(b *testing.B) {
	for _, n := range []int{0, 10, 1000} {
		b.Run(fmt.Sprintf("pending=%d", n), func(b *testing.B) {
			s := client.FilePendingStore(filepath.Join(b.TempDir(), "pending.json"))
			st := client.PendingState{ClientID: "abc", NextID: uint64(n + 1), Format: transport.FormatJSON}
			for i := range n {
				st.Pending = append(st.Pending, client.PendingMessage{ID: uint64(i + 1), Payload: []byte(`{"_":"Add","0":5}`)})
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Save(st); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
