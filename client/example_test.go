package client_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/lily-go/lily/actors"
	"github.com/lily-go/lily/client"
	"github.com/lily-go/lily/demo/counter"
	"github.com/lily-go/lily/gateway"
	"github.com/lily-go/lily/server"
	"github.com/lily-go/lily/transport"
)

func ExampleConnect() {
	// A node serving the counter kind, in process.
	ser := transport.Automatic[counter.Counter, counter.Msg](counter.Variants...)
	registry, err := server.NewRegistry(server.Config{}, actors.NewKind("counter", counter.Store(), ser))
	if err != nil {
		panic(err)
	}
	defer registry.Stop()
	gw, err := gateway.New(registry, gateway.Config{})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	defer gw.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "ws://" + srv.Listener.Addr().String() + "/ws/counter/demo"
	c, err := client.Connect(ctx, url, counter.Store(), ser, client.Options{})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	if err := c.Send(counter.Increment{}); err != nil {
		panic(err)
	}
	fmt.Println("local:", c.Model().Count, "pending:", c.Pending()) // applied at once
	if err := c.Flush(ctx); err != nil {                            // wait for the acknowledgement
		panic(err)
	}
	model, seq := c.Confirmed()
	fmt.Println("confirmed:", model.Count, "at sequence", seq)
	// Output:
	// local: 1 pending: 1
	// confirmed: 1 at sequence 1
}

func ExampleClient_Subscribe() {
	ser := transport.Automatic[counter.Counter, counter.Msg](counter.Variants...)
	registry, err := server.NewRegistry(server.Config{}, actors.NewKind("counter", counter.Store(), ser))
	if err != nil {
		panic(err)
	}
	defer registry.Stop()
	gw, err := gateway.New(registry, gateway.Config{})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	defer gw.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, "ws://"+srv.Listener.Addr().String()+"/ws/counter/subscribe", counter.Store(), ser, client.Options{})
	if err != nil {
		panic(err)
	}
	// Callbacks run on the client's own goroutine: hand the changes over.
	changes := make(chan client.Change[counter.Counter], 16)
	c.Subscribe(func(ch client.Change[counter.Counter]) { changes <- ch })

	_ = c.Send(counter.Add{N: 5})
	_ = c.Flush(ctx)
	_ = c.Close() // delivers the last change before it returns
	close(changes)
	for ch := range changes {
		fmt.Printf("%s: count %d at seq %d, %d pending\n", ch.State, ch.Model.Count, ch.Sequence, ch.Pending)
	}
	// Output:
	// connected: count 0 at seq 0, 0 pending
	// connected: count 5 at seq 0, 1 pending
	// connected: count 5 at seq 1, 0 pending
	// closed: count 5 at seq 1, 0 pending
}

func ExampleFilePendingStore() {
	dir, err := os.MkdirTemp("", "lily-client")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	pending := client.FilePendingStore(filepath.Join(dir, "pending.json"))

	// A client saves its state on every Send and acknowledgement; the next
	// process with the same file resumes from it.
	err = pending.Save(client.PendingState{
		ClientID: "0123456789abcdef0123456789abcdef",
		NextID:   8,
		Format:   transport.FormatJSON,
		Pending:  []client.PendingMessage{{ID: 7, Payload: []byte(`{"_":"Increment"}`)}},
	})
	if err != nil {
		panic(err)
	}
	st, err := pending.Load()
	if err != nil {
		panic(err)
	}
	fmt.Println(st.ClientID, st.NextID, st.Pending[0].ID, string(st.Pending[0].Payload))
	// Output:
	// 0123456789abcdef0123456789abcdef 8 7 {"_":"Increment"}
}

func ExampleBackoff_Delay() {
	var b client.Backoff // lily's defaults
	for attempt := range 7 {
		fmt.Println(b.Delay(attempt, 0.5)) // 0.5: the middle of the jitter range
	}
	// Output:
	// 1s
	// 2s
	// 4s
	// 8s
	// 16s
	// 30s
	// 30s
}
