package journal

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"sort"

	"google.golang.org/protobuf/proto"

	"github.com/lily-go/lily/messages"
)

// The on-disk form of records and snapshots, shared by the implementations
// that store bytes: a CRC-32C of the rest, then the protobuf message
// (messages.JournalRecord, messages.JournalSnapshot). The checksum makes a
// damaged value an error instead of a plausible wrong message.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errChecksum = errors.New("checksum mismatch")

func seal(body []byte) []byte {
	out := make([]byte, 4, 4+len(body))
	binary.BigEndian.PutUint32(out, crc32.Checksum(body, castagnoli))
	return append(out, body...)
}

func unseal(data []byte) ([]byte, error) {
	if len(data) < 4 {
		return nil, errors.New("value too short")
	}
	body := data[4:]
	if binary.BigEndian.Uint32(data) != crc32.Checksum(body, castagnoli) {
		return nil, errChecksum
	}
	return body, nil
}

// EncodeRecord returns the stored form of r.
func EncodeRecord(r Record) ([]byte, error) {
	body, err := proto.Marshal(&messages.JournalRecord{
		Sequence: r.Sequence, ClientId: r.ClientID, MessageId: r.MessageID, Payload: r.Payload,
	})
	if err != nil {
		return nil, err
	}
	return seal(body), nil
}

// DecodeRecord reads a stored record; a damaged one is an error.
func DecodeRecord(data []byte) (Record, error) {
	body, err := unseal(data)
	if err != nil {
		return Record{}, err
	}
	var m messages.JournalRecord
	if err := proto.Unmarshal(body, &m); err != nil {
		return Record{}, err
	}
	return Record{Sequence: m.Sequence, ClientID: m.ClientId, MessageID: m.MessageId, Payload: m.Payload}, nil
}

// EncodeSnapshot returns the stored form of s (client ids in order, so the
// bytes are deterministic).
func EncodeSnapshot(s Snapshot) ([]byte, error) {
	m := &messages.JournalSnapshot{Sequence: s.Sequence, Model: s.Model}
	ids := make([]string, 0, len(s.Applied))
	for id := range s.Applied {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		a := s.Applied[id]
		m.Applied = append(m.Applied, &messages.AppliedID{ClientId: id, MessageId: a.MessageID, Sequence: a.Sequence})
	}
	body, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	return seal(body), nil
}

// DecodeSnapshot reads a stored snapshot; a damaged one is an error.
func DecodeSnapshot(data []byte) (Snapshot, error) {
	body, err := unseal(data)
	if err != nil {
		return Snapshot{}, err
	}
	var m messages.JournalSnapshot
	if err := proto.Unmarshal(body, &m); err != nil {
		return Snapshot{}, err
	}
	s := Snapshot{Sequence: m.Sequence, Model: m.Model, Applied: make(map[string]Applied, len(m.Applied))}
	for _, a := range m.Applied {
		s.Applied[a.ClientId] = Applied{MessageID: a.MessageId, Sequence: a.Sequence}
	}
	return s, nil
}
