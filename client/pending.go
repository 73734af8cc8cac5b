package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/lily-go/lily/transport"
)

// PendingStore keeps a client's durable part across process restarts: its
// client id, its message id counter and its pending messages. With one, a
// client process that restarts keeps its identity and its offline edits,
// and the server applies each of them exactly once.
//
// The client calls Load once, in Connect, and Save one call at a time
// (never concurrently), from the goroutine of Send, of the client's saver
// or of Close. Save must be atomic: after a crash, Load returns either the
// previous state or the new one, never a mix.
type PendingStore interface {
	// Load returns the saved state, or the zero PendingState and a nil
	// error when nothing was saved yet.
	Load() (PendingState, error)
	// Save replaces the saved state with s, durably, before it returns.
	// Save must not keep s.Pending or its payloads after it returns.
	Save(s PendingState) error
}

// PendingState is what a PendingStore saves.
type PendingState struct {
	// ClientID is the client's id.
	ClientID string
	// NextID is the id the client's next message gets. Ids only grow, so
	// the server can tell a resent message from a new one.
	NextID uint64
	// Format is the format the payloads are encoded in.
	Format transport.Format
	// Pending are the messages sent but not yet acknowledged, in id order.
	Pending []PendingMessage
}

// PendingMessage is one message that the server has not acknowledged yet.
type PendingMessage struct {
	ID      uint64 // the message id, below PendingState.NextID
	Payload []byte // the message as the serialiser encoded it, in PendingState.Format
}

// FileStore is a PendingStore that keeps the state in one JSON file. It is
// safe for concurrent use, though a client calls it one call at a time.
type FileStore struct {
	path string
}

// FilePendingStore returns a PendingStore that keeps its state in the file
// at path (its directory must exist). Save writes a temporary file in the
// same directory, fsyncs it, renames it over path and fsyncs the directory,
// so a crash leaves either the old state or the new one.
//
// One file serves one client (one store URL) at a time.
func FilePendingStore(path string) *FileStore {
	return &FileStore{path: path}
}

// fileState is the file's JSON form.
type fileState struct {
	Version  int           `json:"version"`
	ClientID string        `json:"client_id"`
	NextID   uint64        `json:"next_id"`
	Format   string        `json:"format"`
	Pending  []fileMessage `json:"pending"`
}

type fileMessage struct {
	ID      uint64 `json:"id"`
	Payload []byte `json:"payload"` // base64
}

const fileVersion = 1

// Load reads the file; a missing file is the zero state.
func (s *FileStore) Load() (PendingState, error) {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return PendingState{}, nil
	}
	if err != nil {
		return PendingState{}, fmt.Errorf("client: pending store: %w", err)
	}
	var f fileState
	if err := json.Unmarshal(data, &f); err != nil {
		return PendingState{}, fmt.Errorf("client: pending store %s: %w", s.path, err)
	}
	if f.Version != fileVersion {
		return PendingState{}, fmt.Errorf("client: pending store %s: unknown version %d", s.path, f.Version)
	}
	st := PendingState{ClientID: f.ClientID, NextID: f.NextID, Pending: make([]PendingMessage, len(f.Pending))}
	switch f.Format {
	case "json":
		st.Format = transport.FormatJSON
	case "msgpack":
		st.Format = transport.FormatMsgPack
	case "":
	default:
		return PendingState{}, fmt.Errorf("client: pending store %s: unknown format %q", s.path, f.Format)
	}
	if st.ClientID != "" && !transport.ValidClientID(st.ClientID) {
		return PendingState{}, fmt.Errorf("client: pending store %s: invalid client id %q", s.path, st.ClientID)
	}
	var last uint64
	for i, m := range f.Pending {
		// Ids are what makes a resend safe: they must be the increasing
		// ids the client gave, all below the next one.
		if m.ID <= last || m.ID >= f.NextID {
			return PendingState{}, fmt.Errorf("client: pending store %s: message id %d out of order (after %d, next %d)", s.path, m.ID, last, f.NextID)
		}
		last = m.ID
		st.Pending[i] = PendingMessage{ID: m.ID, Payload: m.Payload}
	}
	return st, nil
}

// Save writes st atomically: temporary file, fsync, rename, fsync of the
// directory.
func (s *FileStore) Save(st PendingState) error {
	f := fileState{Version: fileVersion, ClientID: st.ClientID, NextID: st.NextID, Pending: make([]fileMessage, len(st.Pending))}
	if st.Format != 0 {
		f.Format = st.Format.String()
	}
	for i, m := range st.Pending {
		f.Pending[i] = fileMessage{ID: m.ID, Payload: m.Payload}
	}
	data, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("client: pending store: %w", err)
	}
	if err := writeFileAtomic(s.path, data); err != nil {
		return fmt.Errorf("client: pending store: %w", err)
	}
	return nil
}

// writeFileAtomic replaces path with data: a temporary file in the same
// directory, fsync, rename, fsync of the directory.
func writeFileAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, base+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
