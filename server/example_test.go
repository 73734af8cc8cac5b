package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/lily-go/lily/server"
	"github.com/lily-go/lily/store"
	"github.com/lily-go/lily/transport"
)

// The seed's example: create a store, start a server on it, and wire a
// client in.
func ExampleStart() {
	appStore := store.New(Counter{}, updateCounter)
	srv, err := server.Start(appStore, transport.Automatic[Counter, CounterMsg](Increment{}, Add{}))
	if err != nil {
		panic(err)
	}
	defer srv.Stop()

	frames := make(chan []byte, 8)
	srv.Connect("abc123", func(b []byte) { frames <- b })
	srv.Incoming("abc123", []byte(`{"type":"client_message","id":1,"payload":{"_":"Add","0":5}}`))
	fmt.Println(string(<-frames))
	srv.Incoming("abc123", []byte(`{"type":"resync","after_sequence":0}`))
	snapshot, _ := transport.Decode(<-frames, transport.FormatJSON)
	fmt.Println(snapshot.Type, snapshot.Sequence, string(snapshot.State))
	// Output:
	// {"type":"acknowledge","sequence":1,"id":1}
	// snapshot 1 {"_":"Counter","0":5}
}

// Other clients of the store get each applied message as a server_message.
func ExampleServer_Connect() {
	srv, _ := server.Start(store.New(Counter{}, updateCounter), transport.Automatic[Counter, CounterMsg](Increment{}, Add{}))
	defer srv.Stop()

	alice, bob := make(chan []byte, 8), make(chan []byte, 8)
	srv.Connect("alice", func(b []byte) { alice <- b })
	srv.Connect("bob", func(b []byte) { bob <- b })
	srv.Incoming("alice", []byte(`{"type":"client_message","payload":{"_":"Increment"}}`))
	fmt.Println("alice:", string(<-alice))
	fmt.Println("bob:  ", string(<-bob))
	// Output:
	// alice: {"type":"acknowledge","sequence":1}
	// bob:   {"type":"server_message","sequence":1,"payload":{"_":"Increment"}}
}

// A side-effect hook, as in the seed's on_message example.
func ExampleServer_OnMessage() {
	srv, _ := server.Start(store.New(Counter{}, updateCounter), transport.Automatic[Counter, CounterMsg](Increment{}, Add{}))
	defer srv.Stop()

	saved := make(chan string, 1)
	srv.OnMessage(func(msg CounterMsg, model Counter, clientID string) {
		switch msg := msg.(type) {
		case Add:
			saved <- fmt.Sprintf("%s added %d, count is %d", clientID, msg.N, model.Count)
		}
	})
	srv.Incoming("abc123", []byte(`{"type":"client_message","payload":{"_":"Add","0":7}}`))
	fmt.Println(<-saved)
	// Output:
	// abc123 added 7, count is 7
}

// AutoLogMessages logs every applied message.
func ExampleServer_AutoLogMessages() {
	noTime := func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: noTime}))
	srv, _ := server.StartWithConfig(store.New(Counter{}, updateCounter), transport.Automatic[Counter, CounterMsg](Increment{}, Add{}),
		server.Config{Name: "counter/demo", Logger: logger})
	srv.AutoLogMessages(slog.LevelInfo)

	srv.Incoming("abc123", []byte(`{"type":"client_message","payload":{"_":"Add","0":2}}`))
	srv.Stop() // Stop lets the store finish what was enqueued.
	// Output:
	// level=INFO msg=message store=counter/demo client_id=abc123 message={N:2}
}

// Stop ends the server; later calls do nothing.
func ExampleServer_Stop() {
	srv, _ := server.Start(store.New(Counter{}, updateCounter), transport.Automatic[Counter, CounterMsg](Increment{}, Add{}))
	srv.Incoming("abc123", []byte(`{"type":"client_message","payload":{"_":"Increment"}}`))
	model, seq, _, _ := srv.State(context.Background())
	fmt.Println(model.Count, seq)
	srv.Stop()
	srv.Incoming("abc123", []byte(`{"type":"client_message","payload":{"_":"Increment"}}`)) // dropped
	_, _, _, err := srv.State(context.Background())
	fmt.Println(err)
	// Output:
	// 1 1
	// server: stopped
}

func ExampleGenerateClientID() {
	id := server.GenerateClientID()
	fmt.Println(len(id))
	// Output:
	// 32
}
