// Package messages holds the protobuf messages exchanged between lily's
// actors, and between nodes of a cluster. The Go code is generated from
// messages.proto and committed, so a build needs neither protoc nor
// protoc-gen-go.
//
// To regenerate after editing messages.proto, install protoc
// (Debian: apt-get install protobuf-compiler) and protoc-gen-go
// (go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12), then
// run:
//
//	go generate ./messages
package messages

//go:generate sh -c "protoc -I . -I \"$(go env GOMODCACHE)/github.com/asynkron/protoactor-go@v0.0.0-20240822202345-3c0e61ca19c9/actor\" --go_out=. --go_opt=paths=source_relative --go_opt=Mactor.proto=github.com/asynkron/protoactor-go/actor messages.proto"
