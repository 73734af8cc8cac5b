package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/lily-go/lily/store"
	"github.com/lily-go/lily/transport"
)

// Kind is a kind of store: a store and its serialiser under a name, with the
// model and message types erased so that kinds of different types can be
// served side by side. Every store of a kind starts from the kind's initial
// model.
type Kind struct {
	name  string
	props func(cfg Config) *actor.Props
}

// NewKind returns the kind named name (1-128 chars of [A-Za-z0-9._-]) whose
// stores run st and encode with ser.
func NewKind[M, Msg any](name string, st store.Store[M, Msg], ser transport.Serialiser[M, Msg]) Kind {
	return Kind{name: name, props: func(cfg Config) *actor.Props { return StoreProps(st, ser, cfg) }}
}

// Name returns the kind's name.
func (k Kind) Name() string { return k.name }

// Props returns the props of a store actor of this kind.
func (k Kind) Props(cfg Config) *actor.Props { return k.props(cfg) }
