//go:build !race

package cluster

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/lily-go/lily/actors"
	"github.com/lily-go/lily/internal/testutil"
	"github.com/lily-go/lily/transport"
)

// unknownMessage returns a protobuf message of a type no node has
// registered (built at run time with dynamicpb): the receiving node's
// remote layer cannot deserialise it.
func unknownMessage(t *testing.T) *dynamicpb.Message {
	t.Helper()
	name, field := "Unknown", "text"
	number, label, typ := int32(1), descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL, descriptorpb.FieldDescriptorProto_TYPE_STRING
	syntax, pkg, file := "proto3", "lilytest", "lilytest/unknown.proto"
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name: &file, Package: &pkg, Syntax: &syntax,
		MessageType: []*descriptorpb.DescriptorProto{{
			Name:  &name,
			Field: []*descriptorpb.FieldDescriptorProto{{Name: &field, Number: &number, Label: &label, Type: &typ, JsonName: &field}},
		}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	md := fd.Messages().Get(0)
	m := dynamicpb.NewMessage(md)
	m.Set(md.Fields().Get(0), protoreflect.ValueOfString("hello"))
	return m
}

// TestUnknownMessageTypeDoesNotCrashANode (pitfall 2): a node that
// receives a message of a type it does not know would crash in
// protoactor's deserialiser (a nil dereference); the gRPC interceptors
// recover it, log it, and the node goes on serving its stores.
func TestUnknownMessageTypeDoesNotCrashANode(t *testing.T) {
	logs := &testutil.LockedBuffer{}
	ns := newNodes(t)
	a := ns.start(Config{NodeName: "a", StoreKinds: []actors.Kind{counterKind()}})[0]
	b := ns.start(Config{NodeName: "b", Seeds: []string{a.GossipAddress()}, StoreKinds: []actors.Kind{counterKind()},
		Logger: slog.New(slog.NewTextHandler(logs, nil))})[0]
	waitFor(t, "two members", count(a, 2))
	all := []*Node{a, b}
	name := storeOn(t, all, 1, "u")

	a.system.Root.Send(&actor.PID{Address: b.Address(), Id: "nobody"}, unknownMessage(t))
	waitFor(t, "b logs the recovered panic", func() bool { return strings.Contains(logs.String(), "recovered a panic") })

	select {
	case <-b.Done():
		t.Fatalf("b stopped: %v", b.Err())
	default:
	}
	c := connect(t, a, name, "c")
	c.increment(1)
	c.find("ack 1", func(f transport.Frame) bool {
		return f.Type == transport.TypeAcknowledge && f.ID == 1 && f.Sequence == 1
	})
}
