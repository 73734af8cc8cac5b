package transport

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// source reads the values of the automatic format from JSON or
// MessagePack. Its errors are messages without a path ("expected integer,
// got string"); the decoder adds the path.
type source interface {
	// isNull reports whether the next value is null (nil), consuming it if so.
	isNull() (bool, error)
	readBool() (bool, error)
	readInt(bits int) (int64, error)
	readUint(bits int) (uint64, error)
	readFloat(bits int) (float64, error)
	readString() (string, error)
	// beginArray consumes an array's start and returns its length, or -1
	// when it is not known in advance; more then tells whether element i
	// follows, consuming the separator or the end.
	beginArray() (int, error)
	more(i, n int) (bool, error)
	// beginObject consumes an object's start and returns its number of
	// entries, or -1; nextKey then reads key i (valid until the next call)
	// or the end.
	beginObject() (int, error)
	nextKey(i, n int) (key []byte, ok bool, err error)
	skip() error
	mark() int
	reset(pos int)
	end() error
}

// mismatch is the error of a value of the wrong kind.
type mismatch struct{ want, got string }

func (e *mismatch) Error() string { return "expected " + e.want + ", got " + e.got }

func expected(want string, got fmt.Stringer) error {
	return &mismatch{want: want, got: got.String()}
}

// jsonSource reads JSON.
type jsonSource struct {
	s   jsonScanner
	key []byte
}

func (j *jsonSource) isNull() (bool, error) {
	k, err := j.s.peek()
	if err != nil || k != jsonNull {
		return false, err
	}
	return true, j.s.literal("null")
}

func (j *jsonSource) expect(want jsonKind, name string) error {
	k, err := j.s.peek()
	if err != nil {
		return err
	}
	if k != want {
		return expected(name, k)
	}
	return nil
}

func (j *jsonSource) readBool() (bool, error) {
	if err := j.expect(jsonBool, "boolean"); err != nil {
		return false, err
	}
	if j.s.data[j.s.pos] == 't' {
		return true, j.s.literal("true")
	}
	return false, j.s.literal("false")
}

// integer reads a number written as an integer.
func (j *jsonSource) integer() (string, error) {
	if err := j.expect(jsonNumber, "integer"); err != nil {
		return "", err
	}
	lit, integer, err := j.s.number()
	if err != nil {
		return "", err
	}
	if !integer {
		return "", fmt.Errorf("expected integer, got float %s", truncate(string(lit)))
	}
	return string(lit), nil
}

func (j *jsonSource) readInt(bits int) (int64, error) {
	lit, err := j.integer()
	if err != nil {
		return 0, err
	}
	i, err := strconv.ParseInt(lit, 10, bits)
	if err != nil {
		return 0, rangeError(lit, "int", bits)
	}
	return i, nil
}

func (j *jsonSource) readUint(bits int) (uint64, error) {
	lit, err := j.integer()
	if err != nil {
		return 0, err
	}
	u, err := strconv.ParseUint(lit, 10, bits)
	if err != nil {
		return 0, rangeError(lit, "uint", bits)
	}
	return u, nil
}

func rangeError(lit, kind string, bits int) error {
	return fmt.Errorf("integer %s out of range for %s%d", truncate(lit), kind, bits)
}

func (j *jsonSource) readFloat(bits int) (float64, error) {
	if err := j.expect(jsonNumber, "float"); err != nil {
		return 0, err
	}
	lit, _, err := j.s.number()
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(string(lit), bits)
	if err != nil {
		return 0, fmt.Errorf("number %s out of range for float%d", truncate(string(lit)), bits)
	}
	return f, nil
}

func (j *jsonSource) readString() (string, error) {
	if err := j.expect(jsonString, "string"); err != nil {
		return "", err
	}
	return j.s.readString()
}

func (j *jsonSource) beginArray() (int, error) {
	if err := j.expect(jsonArray, "array"); err != nil {
		return 0, err
	}
	j.s.pos++
	return -1, nil
}

func (j *jsonSource) more(i, _ int) (bool, error) { return j.sep(i, ']') }

// sep reads what comes before element i of an array or object: nothing or
// a comma, or else the closing bracket, which ends it.
func (j *jsonSource) sep(i int, closing byte) (bool, error) {
	j.s.ws()
	if j.s.pos >= len(j.s.data) {
		return false, errJSONEnd
	}
	c := j.s.data[j.s.pos]
	if c == closing {
		j.s.pos++
		return false, nil
	}
	if i == 0 {
		return true, nil
	}
	if c != ',' {
		return false, j.s.syntaxError()
	}
	j.s.pos++
	return true, nil
}

func (j *jsonSource) beginObject() (int, error) {
	if err := j.expect(jsonObject, "object"); err != nil {
		return 0, err
	}
	j.s.pos++
	return -1, nil
}

func (j *jsonSource) nextKey(i, _ int) ([]byte, bool, error) {
	ok, err := j.sep(i, '}')
	if !ok || err != nil {
		return nil, false, err
	}
	j.s.ws()
	if j.s.pos >= len(j.s.data) {
		return nil, false, errJSONEnd
	}
	if j.s.data[j.s.pos] != '"' {
		return nil, false, j.s.syntaxError()
	}
	start, end, complex, err := j.s.stringSpan()
	if err != nil {
		return nil, false, err
	}
	key := j.s.data[start:end]
	if complex {
		k, err := decodeJSONString(j.s.data[start-1:end+1], true)
		if err != nil {
			return nil, false, err
		}
		j.key = append(j.key[:0], k...)
		key = j.key
	}
	if err := j.s.consume(':'); err != nil {
		return nil, false, err
	}
	return key, true, nil
}

func (j *jsonSource) skip() error {
	_, _, err := j.s.skipValue()
	return err
}

func (j *jsonSource) mark() int     { return j.s.pos }
func (j *jsonSource) reset(pos int) { j.s.pos = pos }

func (j *jsonSource) end() error {
	if err := j.s.end(); err != nil {
		return errors.New("trailing data after the value")
	}
	return nil
}

// msgpackSource reads MessagePack.
type msgpackSource struct{ m *mpReader }

func (s msgpackSource) isNull() (bool, error) {
	_, k, err := s.m.peek()
	if err != nil || k != mpNil {
		return false, err
	}
	return true, s.m.readNil()
}

// kindError rewrites a wrongKind error of the reader as an expectation.
func kindError(want string, err error) error {
	var wk *wrongKind
	if errors.As(err, &wk) {
		return &mismatch{want: want, got: wk.got}
	}
	return err
}

func (s msgpackSource) readBool() (bool, error) {
	b, err := s.m.readBool()
	return b, kindError("boolean", err)
}

func (s msgpackSource) readInt(bits int) (int64, error) {
	neg, i, u, err := s.m.readInteger()
	if err != nil {
		return 0, kindError("integer", err)
	}
	if neg {
		if bits < 64 && i < -1<<(bits-1) {
			return 0, rangeError(strconv.FormatInt(i, 10), "int", bits)
		}
		return i, nil
	}
	if u > 1<<(bits-1)-1 {
		return 0, rangeError(strconv.FormatUint(u, 10), "int", bits)
	}
	return int64(u), nil
}

func (s msgpackSource) readUint(bits int) (uint64, error) {
	neg, i, u, err := s.m.readInteger()
	if err != nil {
		return 0, kindError("integer", err)
	}
	if neg {
		return 0, rangeError(strconv.FormatInt(i, 10), "uint", bits)
	}
	if bits < 64 && u > 1<<bits-1 {
		return 0, rangeError(strconv.FormatUint(u, 10), "uint", bits)
	}
	return u, nil
}

func (s msgpackSource) readFloat(bits int) (float64, error) {
	_, k, err := s.m.peek()
	if err != nil {
		return 0, err
	}
	var f float64
	switch k {
	case mpInt:
		neg, i, u, err := s.m.readInteger()
		if err != nil {
			return 0, err
		}
		if neg {
			f = float64(i)
		} else {
			f = float64(u)
		}
	case mpFloat:
		if f, err = s.m.readFloat(); err != nil {
			return 0, err
		}
	default:
		return 0, expected("float", k)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, errors.New("expected a finite float, got NaN or infinity")
	}
	if bits == 32 {
		if math.Abs(f) > math.MaxFloat32 {
			return 0, fmt.Errorf("number %g out of range for float32", f)
		}
		f = float64(float32(f))
	}
	return f, nil
}

func (s msgpackSource) readString() (string, error) {
	str, err := s.m.readString()
	return str, kindError("string", err)
}

func (s msgpackSource) beginArray() (int, error) {
	n, err := s.m.readArrayLen()
	return n, kindError("array", err)
}

func (s msgpackSource) more(i, n int) (bool, error) { return i < n, nil }

func (s msgpackSource) beginObject() (int, error) {
	n, err := s.m.readMapLen()
	return n, kindError("map", err)
}

func (s msgpackSource) nextKey(i, n int) ([]byte, bool, error) {
	if i >= n {
		return nil, false, nil
	}
	k, err := s.m.readStrBytes()
	if err != nil {
		return nil, false, kindError("string key", err)
	}
	return k, true, nil
}

func (s msgpackSource) skip() error   { return s.m.skip() }
func (s msgpackSource) mark() int     { return s.m.pos() }
func (s msgpackSource) reset(pos int) { s.m.seek(pos) }
func (s msgpackSource) end() error {
	if s.m.remaining() != 0 {
		return errors.New("trailing data after the value")
	}
	return nil
}
