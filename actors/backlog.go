package actors

import (
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// flushEvery bounds how many messages a busy store handles before it tells
// its clients' actors to drain what it queued for them.
const flushEvery = 16

// backlog counts the user messages waiting in a store actor's mailbox (the
// one being handled included). The store queues frames for its clients as
// it goes and tells their actors to drain only when the backlog is empty or
// every flushEvery messages, so under load each client actor wakes once per
// batch instead of once per frame (and a gateway writes the batch in one
// system call). It is a mailbox middleware: MessagePosted runs on the
// senders' goroutines, MessageReceived on the actor's.
type backlog struct{ n atomic.Int64 }

var _ actor.MailboxMiddleware = (*backlog)(nil)

func isUserMessage(m any) bool {
	_, system := m.(actor.SystemMessage)
	return !system
}

func (b *backlog) MailboxStarted() {}
func (b *backlog) MailboxEmpty()   {}

func (b *backlog) MessagePosted(m any) {
	if isUserMessage(m) {
		b.n.Add(1)
	}
}

func (b *backlog) MessageReceived(m any) {
	if isUserMessage(m) {
		b.n.Add(-1)
	}
}

// more reports whether messages other than the one being handled wait.
func (b *backlog) more() bool { return b.n.Load() > 1 }
