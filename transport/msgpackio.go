package transport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// MessagePack type codes (the MessagePack specification), mirrored from
// package msgpcode as constants.
const (
	mpPosFixMax  = 0x7f
	mpFixMapLow  = 0x80
	mpFixMapHigh = 0x8f
	mpFixArrLow  = 0x90
	mpFixArrHigh = 0x9f
	mpFixStrLow  = 0xa0
	mpFixStrHigh = 0xbf
	mpNilCode    = 0xc0
	mpFalse      = 0xc2
	mpTrue       = 0xc3
	mpBin8       = 0xc4
	mpBin16      = 0xc5
	mpBin32      = 0xc6
	mpExt8       = 0xc7
	mpExt16      = 0xc8
	mpExt32      = 0xc9
	mpFloat32    = 0xca
	mpFloat64    = 0xcb
	mpUint8      = 0xcc
	mpUint16     = 0xcd
	mpUint32     = 0xce
	mpUint64     = 0xcf
	mpInt8       = 0xd0
	mpInt16      = 0xd1
	mpInt32      = 0xd2
	mpInt64      = 0xd3
	mpFixExt1    = 0xd4
	mpFixExt16   = 0xd8
	mpStr8       = 0xd9
	mpStr16      = 0xda
	mpStr32      = 0xdb
	mpArray16    = 0xdc
	mpArray32    = 0xdd
	mpMap16      = 0xde
	mpMap32      = 0xdf
	mpNegFixMin  = 0xe0
)

// mpKind classifies a MessagePack value by its first byte.
type mpKind uint8

const (
	mpInvalid mpKind = iota
	mpNil
	mpBool
	mpInt
	mpFloat
	mpStr
	mpBin
	mpArray
	mpMap
	mpExt
)

func (k mpKind) String() string {
	switch k {
	case mpNil:
		return "nil"
	case mpBool:
		return "boolean"
	case mpInt:
		return "integer"
	case mpFloat:
		return "float"
	case mpStr:
		return "string"
	case mpBin:
		return "bin"
	case mpArray:
		return "array"
	case mpMap:
		return "map"
	case mpExt:
		return "ext"
	}
	return "invalid value"
}

func kindOfMsgPack(c byte) mpKind {
	switch {
	case c <= mpPosFixMax || c >= mpNegFixMin:
		return mpInt
	case c <= mpFixMapHigh:
		return mpMap
	case c <= mpFixArrHigh:
		return mpArray
	case c <= mpFixStrHigh:
		return mpStr
	}
	switch c {
	case mpNilCode:
		return mpNil
	case mpFalse, mpTrue:
		return mpBool
	case mpBin8, mpBin16, mpBin32:
		return mpBin
	case mpExt8, mpExt16, mpExt32:
		return mpExt
	case mpFloat32, mpFloat64:
		return mpFloat
	case mpUint8, mpUint16, mpUint32, mpUint64, mpInt8, mpInt16, mpInt32, mpInt64:
		return mpInt
	case mpStr8, mpStr16, mpStr32:
		return mpStr
	case mpArray16, mpArray32:
		return mpArray
	case mpMap16, mpMap32:
		return mpMap
	}
	if c >= mpFixExt1 && c <= mpFixExt16 {
		return mpExt
	}
	return mpInvalid // 0xc1, never used
}

// errMsgPackEnd is returned when the data ends in the middle of a value.
var errMsgPackEnd = errors.New("unexpected end of MessagePack data")

// appendWriter is an io.Writer and io.ByteWriter that appends to buf, so that
// a msgpack.Encoder can append to a caller's slice.
type appendWriter struct{ buf []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	return len(p), nil
}

func (w *appendWriter) WriteByte(c byte) error {
	w.buf = append(w.buf, c)
	return nil
}

// mpEncoder is a pooled msgpack.Encoder that appends to a slice.
type mpEncoder struct {
	w   appendWriter
	enc *msgpack.Encoder
}

var mpEncoderPool = sync.Pool{New: func() any {
	e := new(mpEncoder)
	e.enc = msgpack.NewEncoder(&e.w)
	return e
}}

// getMPEncoder returns an encoder appending to dst; release it with put.
func getMPEncoder(dst []byte) *mpEncoder {
	e := mpEncoderPool.Get().(*mpEncoder)
	e.w.buf = dst
	return e
}

// put returns the encoder to the pool and gives back what it wrote.
func (e *mpEncoder) put() []byte {
	b := e.w.buf
	e.w.buf = nil
	mpEncoderPool.Put(e)
	return b
}

// mpReader reads MessagePack values from a byte slice through a
// msgpack.Decoder, checking every length against the bytes that are left
// before allocating, and bounding the nesting of skipped values.
type mpReader struct {
	data    []byte
	r       bytes.Reader
	dec     *msgpack.Decoder
	scratch []byte
	depth   int
}

var mpReaderPool = sync.Pool{New: func() any {
	m := new(mpReader)
	// A *bytes.Reader is an io.ByteScanner, so the decoder reads from it
	// directly without buffering: seeking it moves the decoder too.
	m.dec = msgpack.NewDecoder(&m.r)
	return m
}}

func getMPReader(data []byte) *mpReader {
	m := mpReaderPool.Get().(*mpReader)
	m.data = data
	m.r.Reset(data)
	m.depth = 0
	return m
}

func (m *mpReader) put() {
	m.data = nil
	m.r.Reset(nil)
	if cap(m.scratch) > 4096 {
		m.scratch = nil
	}
	mpReaderPool.Put(m)
}

func (m *mpReader) pos() int       { return len(m.data) - m.r.Len() }
func (m *mpReader) remaining() int { return m.r.Len() }

func (m *mpReader) seek(pos int) {
	_, _ = m.r.Seek(int64(pos), io.SeekStart)
}

// peek returns the next type code without consuming it.
func (m *mpReader) peek() (byte, mpKind, error) {
	if m.r.Len() == 0 {
		return 0, mpInvalid, errMsgPackEnd
	}
	c := m.data[m.pos()]
	k := kindOfMsgPack(c)
	if k == mpInvalid {
		return c, k, fmt.Errorf("invalid MessagePack code 0x%02x at offset %d", c, m.pos())
	}
	return c, k, nil
}

// libErr turns an error of the msgpack library into a clear one.
func libErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errMsgPackEnd
	}
	return err
}

// wrongKind reports a value of kind got where want was expected.
type wrongKind struct{ got string }

func (e *wrongKind) Error() string { return "got " + e.got }

func (m *mpReader) expect(want mpKind) (byte, error) {
	c, k, err := m.peek()
	if err != nil {
		return c, err
	}
	if k != want {
		return c, &wrongKind{got: k.String()}
	}
	return c, nil
}

// readNil consumes a nil.
func (m *mpReader) readNil() error {
	return libErr(m.dec.DecodeNil())
}

// readBool reads a boolean.
func (m *mpReader) readBool() (bool, error) {
	if _, err := m.expect(mpBool); err != nil {
		return false, err
	}
	b, err := m.dec.DecodeBool()
	return b, libErr(err)
}

// readInteger reads an integer of any encoding: neg tells whether it is
// negative, in which case i holds it; otherwise u does.
func (m *mpReader) readInteger() (neg bool, i int64, u uint64, err error) {
	c, err := m.expect(mpInt)
	if err != nil {
		return false, 0, 0, err
	}
	switch {
	case c <= mpPosFixMax, c >= mpUint8 && c <= mpUint64:
		u, err = m.dec.DecodeUint64()
		return false, 0, u, libErr(err)
	default: // negative fixnum or signed encodings
		i, err = m.dec.DecodeInt64()
		if err != nil {
			return false, 0, 0, libErr(err)
		}
		if i < 0 {
			return true, i, 0, nil
		}
		return false, 0, uint64(i), nil
	}
}

// readFloat reads a float32 or float64 value.
func (m *mpReader) readFloat() (float64, error) {
	c, err := m.expect(mpFloat)
	if err != nil {
		return 0, err
	}
	if c == mpFloat32 {
		f, err := m.dec.DecodeFloat32()
		return float64(f), libErr(err)
	}
	f, err := m.dec.DecodeFloat64()
	return f, libErr(err)
}

// readLen reads the header of a str or bin value and checks its length.
func (m *mpReader) readLen(want mpKind) (int, error) {
	if _, err := m.expect(want); err != nil {
		return 0, err
	}
	n, err := m.dec.DecodeBytesLen()
	if err != nil {
		return 0, libErr(err)
	}
	if n < 0 || n > m.r.Len() {
		return 0, errMsgPackEnd
	}
	return n, nil
}

// readStrBytes reads a string into scratch memory that is valid until the
// next call.
func (m *mpReader) readStrBytes() ([]byte, error) {
	n, err := m.readLen(mpStr)
	if err != nil {
		return nil, err
	}
	if cap(m.scratch) < n {
		m.scratch = make([]byte, n)
	}
	b := m.scratch[:n]
	if err := m.dec.ReadFull(b); err != nil {
		return nil, libErr(err)
	}
	return b, nil
}

// readString reads a string.
func (m *mpReader) readString() (string, error) {
	b, err := m.readStrBytes()
	return string(b), err
}

// readBin reads a bin value into a new slice (never nil).
func (m *mpReader) readBin() ([]byte, error) {
	n, err := m.readLen(mpBin)
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if err := m.dec.ReadFull(b); err != nil {
		return nil, libErr(err)
	}
	return b, nil
}

// readArrayLen reads the header of an array.
func (m *mpReader) readArrayLen() (int, error) {
	if _, err := m.expect(mpArray); err != nil {
		return 0, err
	}
	n, err := m.dec.DecodeArrayLen()
	if err != nil {
		return 0, libErr(err)
	}
	if n < 0 || n > m.r.Len() { // every element takes a byte at least
		return 0, errMsgPackEnd
	}
	return n, nil
}

// readMapLen reads the header of a map.
func (m *mpReader) readMapLen() (int, error) {
	if _, err := m.expect(mpMap); err != nil {
		return 0, err
	}
	n, err := m.dec.DecodeMapLen()
	if err != nil {
		return 0, libErr(err)
	}
	if n < 0 || n > m.r.Len()/2 { // every entry takes two bytes at least
		return 0, errMsgPackEnd
	}
	return n, nil
}

// enter counts one more level of nesting.
func (m *mpReader) enter() error {
	m.depth++
	if m.depth > maxDepth {
		return fmt.Errorf("exceeded max depth of %d", maxDepth)
	}
	return nil
}

// skip skips one value of any kind.
func (m *mpReader) skip() error {
	_, k, err := m.peek()
	if err != nil {
		return err
	}
	switch k {
	case mpArray, mpMap:
		var n int
		if k == mpArray {
			n, err = m.readArrayLen()
		} else {
			n, err = m.readMapLen()
			n *= 2
		}
		if err != nil {
			return err
		}
		if err := m.enter(); err != nil {
			return err
		}
		for range n {
			if err := m.skip(); err != nil {
				return err
			}
		}
		m.depth--
		return nil
	case mpStr, mpBin:
		n, err := m.readLen(k)
		if err != nil {
			return err
		}
		_, _ = m.r.Seek(int64(n), io.SeekCurrent)
		return nil
	case mpExt:
		_, n, err := m.dec.DecodeExtHeader()
		if err != nil {
			return libErr(err)
		}
		if n < 0 || n > m.r.Len() {
			return errMsgPackEnd
		}
		_, _ = m.r.Seek(int64(n), io.SeekCurrent)
		return nil
	default: // nil, booleans and numbers
		return libErr(m.dec.Skip())
	}
}
