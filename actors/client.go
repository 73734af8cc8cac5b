package actors

import (
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lily-go/lily/messages"
)

// drainOutbox tells a client's child actor that its outbox holds frames.
// It never leaves the node: the child and its outbox live with the store.
type drainOutbox struct{}

// clientActor is the child actor of a store for one client connection. It
// owns the connection's Sink and drains the connection's outbox into it, one
// batch per message so that a stop is never held up by a busy outbox. A
// blocking Sink blocks only this actor; a panicking Sink makes its supervisor
// (the store actor) stop it, and only it.
type clientActor struct {
	clientID     string
	connectionID uint64
	out          *outbox
	sink         Sink
	logger       *slog.Logger
	batch        [][]byte
}

// Receive implements actor.Actor.
func (c *clientActor) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case drainOutbox:
		frames, next := c.out.take(c.batch[:0])
		if frames == nil {
			switch next {
			case drainResync:
				ctx.Send(ctx.Parent(), &messages.Overflowed{ClientId: c.clientID, ConnectionId: c.connectionID})
			case drainFinish:
				ctx.Stop(ctx.Self()) // Stopped tells the connection
			}
			return
		}
		err := c.sink(frames)
		clear(frames)
		c.batch = frames[:0]
		if err != nil {
			c.logger.Info("client connection failed; detaching it",
				slog.String("client_id", c.clientID), slog.Any("error", err))
			c.out.close(false)
			ctx.Stop(ctx.Self())
			return
		}
		ctx.Send(ctx.Self(), drainOutbox{})
	case *actor.Stopped:
		if c.out.lettingGo() {
			_ = c.sink(nil) // the store let the connection go
		}
		c.out.close(false)
	}
}
