package messages_test

import (
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/lily-go/lily/messages"
)

// Every message must survive the wire: protoactor's remote layer carries
// only what proto.Marshal keeps.
func TestRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		msg  proto.Message
		zero proto.Message
	}{
		{"ClientFrame", &messages.ClientFrame{ClientId: "alice", Data: []byte(`{"type":"resync"}`)}, &messages.ClientFrame{}},
		{"Connect", &messages.Connect{ClientId: "alice", Connection: actor.NewPID("10.0.0.1:4000", "conn$7"), ConnectionId: 7}, &messages.Connect{}},
		{"Disconnect", &messages.Disconnect{ClientId: "alice", ConnectionId: 7}, &messages.Disconnect{}},
		{"Deliver", &messages.Deliver{Frames: [][]byte{[]byte("a"), {}, []byte("c")}}, &messages.Deliver{}},
		{"Overflowed", &messages.Overflowed{ClientId: "alice", ConnectionId: 9}, &messages.Overflowed{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := proto.Marshal(tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := proto.Unmarshal(b, tc.zero); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(tc.msg, tc.zero) {
				t.Fatalf("round trip gave %v, want %v", tc.zero, tc.msg)
			}
		})
	}
}
