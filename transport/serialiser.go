package transport

// Serialiser turns a store's models and messages into bytes and back, in
// either envelope format. It mirrors lily's transport.Serialiser.
//
// In FormatJSON the bytes must be one JSON value (they are embedded in the
// envelope as is); in FormatMsgPack they are any bytes (carried as a bin
// value). Decode methods never panic: bad input is an error, preferably a
// *Error with CodeBadPayload.
//
// Implementations must be safe for concurrent use.
type Serialiser[M, Msg any] interface {
	// EncodeMessage encodes one message of the store.
	EncodeMessage(msg Msg, format Format) ([]byte, error)
	// DecodeMessage decodes one message of the store.
	DecodeMessage(data []byte, format Format) (Msg, error)
	// EncodeModel encodes a whole model, for snapshots.
	EncodeModel(model M, format Format) ([]byte, error)
	// DecodeModel decodes a whole model, for snapshots.
	DecodeModel(data []byte, format Format) (M, error)
}
