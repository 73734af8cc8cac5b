package gateway_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/gorilla/websocket"

	"github.com/lily-go/lily/actors"
	"github.com/lily-go/lily/demo/counter"
	"github.com/lily-go/lily/gateway"
	"github.com/lily-go/lily/server"
	"github.com/lily-go/lily/transport"
)

// A node: a registry of store kinds behind a gateway, and a raw WebSocket
// client talking PROTOCOL.md to it.
func ExampleNew() {
	registry, _ := server.NewRegistry(server.Config{},
		actors.NewKind("counter", counter.Store(), transport.Automatic[counter.Counter, counter.Msg](counter.Variants...)))
	defer registry.Stop()
	gw, _ := gateway.New(registry, gateway.Config{})
	srv := httptest.NewServer(gw)
	defer srv.Close()
	defer gw.Shutdown(context.Background())

	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws/counter/demo?client_id=alice"
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"client_message","id":1,"payload":{"_":"Add","0":3}}`))
	_, ack, _ := conn.ReadMessage()
	fmt.Println(string(ack))
	_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"resync","after_sequence":0}`))
	_, snapshot, _ := conn.ReadMessage()
	f, _ := transport.Decode(snapshot, transport.FormatJSON)
	fmt.Println(f.Type, f.Sequence, string(f.State))
	// Output:
	// {"type":"acknowledge","sequence":1,"id":1}
	// snapshot 1 {"_":"Counter","0":3}
}
