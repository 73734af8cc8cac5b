package cluster

import "errors"

var (
	// ErrInvalidConfig is wrapped by the errors Start returns for a Config
	// it refuses; the message names the field.
	ErrInvalidConfig = errors.New("cluster: invalid config")
	// ErrMetadataTooLarge is wrapped when a node's metadata (its id,
	// address and kinds, as JSON) would exceed memberlist's 512 bytes.
	ErrMetadataTooLarge = errors.New("cluster: node metadata too large")
	// ErrSplitBrain is what Node.Err returns after the cluster declared
	// this node dead while it was still running (a stall, a partition):
	// its peers have blocked its id for good, so it must not keep serving.
	// The owner shuts the node down and exits; a restart gets a new id.
	ErrSplitBrain = errors.New("cluster: this node was declared dead by its peers")
	// ErrNotJoined is returned by Start when ctx ends before the node
	// sees itself in the cluster's member list.
	ErrNotJoined = errors.New("cluster: node did not join")
)
