package transport

import (
	"cmp"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
)

// sink receives the values of the automatic format and writes them as
// JSON or MessagePack.
type sink interface {
	null()
	boolean(b bool)
	integer(i int64)
	uinteger(u uint64)
	float(f float64, bits int) error
	str(s string)
	beginArray(n int)
	elem(i int) // before element i
	endArray()
	beginObject(n int) // n entries
	key(i int, k string)
	endObject()
}

// jsonSink appends JSON text.
type jsonSink struct{ buf []byte }

func (s *jsonSink) null()             { s.buf = append(s.buf, "null"...) }
func (s *jsonSink) boolean(b bool)    { s.buf = strconv.AppendBool(s.buf, b) }
func (s *jsonSink) integer(i int64)   { s.buf = strconv.AppendInt(s.buf, i, 10) }
func (s *jsonSink) uinteger(u uint64) { s.buf = strconv.AppendUint(s.buf, u, 10) }
func (s *jsonSink) str(v string)      { s.buf = appendJSONString(s.buf, v) }
func (s *jsonSink) beginArray(int)    { s.buf = append(s.buf, '[') }
func (s *jsonSink) endArray()         { s.buf = append(s.buf, ']') }
func (s *jsonSink) beginObject(int)   { s.buf = append(s.buf, '{') }
func (s *jsonSink) endObject()        { s.buf = append(s.buf, '}') }

func (s *jsonSink) float(f float64, bits int) error {
	var err error
	s.buf, err = appendJSONFloat(s.buf, f, bits)
	return err
}

func (s *jsonSink) elem(i int) {
	if i > 0 {
		s.buf = append(s.buf, ',')
	}
}

// key writes an object key; keys are "_" and decimal digits, which need no
// escaping.
func (s *jsonSink) key(i int, k string) {
	if i > 0 {
		s.buf = append(s.buf, ',')
	}
	s.buf = append(s.buf, '"')
	s.buf = append(s.buf, k...)
	s.buf = append(s.buf, '"', ':')
}

// msgpackSink writes MessagePack through a msgpack.Encoder that appends to
// memory (and so never fails).
type msgpackSink struct{ enc *msgpack.Encoder }

func (s msgpackSink) null()             { _ = s.enc.EncodeNil() }
func (s msgpackSink) boolean(b bool)    { _ = s.enc.EncodeBool(b) }
func (s msgpackSink) integer(i int64)   { _ = s.enc.EncodeInt(i) }
func (s msgpackSink) uinteger(u uint64) { _ = s.enc.EncodeUint(u) }
func (s msgpackSink) str(v string)      { _ = s.enc.EncodeString(v) }
func (s msgpackSink) beginArray(n int)  { _ = s.enc.EncodeArrayLen(n) }
func (s msgpackSink) elem(int)          {}
func (s msgpackSink) endArray()         {}
func (s msgpackSink) beginObject(n int) { _ = s.enc.EncodeMapLen(n) }
func (s msgpackSink) key(_ int, k string) {
	_ = s.enc.EncodeString(k)
}
func (s msgpackSink) endObject() {}

func (s msgpackSink) float(f float64, _ int) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return errNonFinite
	}
	_ = s.enc.EncodeFloat64(f)
	return nil
}

// encoder writes Go values in the automatic format.
type encoder struct {
	reg   *registry
	out   sink
	depth int
}

func (e *encoder) value(v reflect.Value, ti *typeInfo) error {
	switch ti.kind {
	case kindBool:
		e.out.boolean(v.Bool())
	case kindInt:
		e.out.integer(v.Int())
	case kindUint:
		e.out.uinteger(v.Uint())
	case kindFloat:
		if err := e.out.float(v.Float(), ti.bits); err != nil {
			return failf("%v", err)
		}
	case kindString:
		e.out.str(v.String())
	case kindStruct:
		return e.structValue(v, ti)
	case kindPtr:
		return e.option(v, ti)
	case kindInterface:
		return e.iface(v)
	case kindSlice, kindArray:
		return e.array(v, ti)
	case kindMap:
		return e.mapValue(v, ti)
	}
	return nil
}

// enter counts a level of nesting, which stops cyclic values.
func (e *encoder) enter() error {
	e.depth++
	if e.depth > maxDepth {
		return failf("nested more than %d levels deep (a cyclic value?)", maxDepth)
	}
	return nil
}

func (e *encoder) structValue(v reflect.Value, ti *typeInfo) error {
	if err := e.enter(); err != nil {
		return err
	}
	e.out.beginObject(1 + len(ti.fields))
	e.out.key(0, "_")
	e.out.str(ti.name)
	for i := range ti.fields {
		f := &ti.fields[i]
		e.out.key(i+1, f.key)
		if err := e.value(v.Field(f.index), f.info); err != nil {
			return at(err, f.key)
		}
	}
	e.out.endObject()
	e.depth--
	return nil
}

func (e *encoder) option(v reflect.Value, ti *typeInfo) error {
	if v.IsNil() {
		e.out.beginObject(1)
		e.out.key(0, "_")
		e.out.str("None")
		e.out.endObject()
		return nil
	}
	if err := e.enter(); err != nil {
		return err
	}
	e.out.beginObject(2)
	e.out.key(0, "_")
	e.out.str("Some")
	e.out.key(1, "0")
	if err := e.value(v.Elem(), ti.elem); err != nil {
		return at(err, "0")
	}
	e.out.endObject()
	e.depth--
	return nil
}

func (e *encoder) iface(v reflect.Value) error {
	if v.IsNil() {
		e.out.null()
		return nil
	}
	dyn := v.Elem()
	vr := e.reg.byType[dyn.Type()]
	if vr == nil {
		return failf("%v is not a registered variant", dyn.Type())
	}
	if dyn.Kind() == reflect.Pointer {
		if dyn.IsNil() {
			e.out.null()
			return nil
		}
		dyn = dyn.Elem()
	}
	return e.structValue(dyn, vr.info)
}

func (e *encoder) array(v reflect.Value, ti *typeInfo) error {
	if err := e.enter(); err != nil {
		return err
	}
	n := v.Len()
	e.out.beginArray(n)
	for i := range n {
		e.out.elem(i)
		if err := e.value(v.Index(i), ti.elem); err != nil {
			return atIndex(err, i)
		}
	}
	e.out.endArray()
	e.depth--
	return nil
}

func (e *encoder) mapValue(v reflect.Value, ti *typeInfo) error {
	if err := e.enter(); err != nil {
		return err
	}
	keys := v.MapKeys()
	sortKeys(keys)
	e.out.beginArray(len(keys))
	for i, k := range keys {
		e.out.elem(i)
		e.out.beginArray(2)
		e.out.elem(0)
		if err := e.value(k, ti.key); err != nil {
			return atIndex(atIndex(err, 0), i)
		}
		e.out.elem(1)
		if err := e.value(v.MapIndex(k), ti.elem); err != nil {
			return atIndex(atIndex(err, 1), i)
		}
		e.out.endArray()
	}
	e.out.endArray()
	e.depth--
	return nil
}

// sortKeys sorts map keys of a kind accepted by typeBuilder.
func sortKeys(keys []reflect.Value) {
	if len(keys) < 2 {
		return
	}
	switch keys[0].Kind() {
	case reflect.String:
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		slices.SortFunc(keys, func(a, b reflect.Value) int { return cmp.Compare(a.Int(), b.Int()) })
	case reflect.Bool:
		slices.SortFunc(keys, func(a, b reflect.Value) int { return cmp.Compare(b2i(a.Bool()), b2i(b.Bool())) })
	default: // unsigned
		slices.SortFunc(keys, func(a, b reflect.Value) int { return cmp.Compare(a.Uint(), b.Uint()) })
	}
}
