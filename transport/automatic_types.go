package transport

import (
	"fmt"
	"reflect"
	"strconv"
)

// infoKind is how the automatic format treats a Go type.
type infoKind uint8

const (
	kindBool infoKind = iota + 1
	kindInt
	kindUint
	kindFloat
	kindString
	kindStruct    // a constructor {"_":Name,"0":...}
	kindSlice     // an array
	kindArray     // an array of a fixed length
	kindPtr       // an option: None or Some
	kindMap       // an array of [key, value] pairs sorted by key
	kindInterface // a constructor looked up among the variants
)

// typeInfo is what the automatic format needs to know about a Go type,
// worked out once when a serialiser is built.
type typeInfo struct {
	kind   infoKind
	typ    reflect.Type
	bits   int         // kindInt, kindUint, kindFloat: the size in bits
	name   string      // kindStruct: the constructor name
	fields []fieldInfo // kindStruct: the exported fields, in order
	elem   *typeInfo   // kindSlice, kindArray, kindPtr, kindMap: elements, pointee, values
	key    *typeInfo   // kindMap: keys
	length int         // kindArray
}

// fieldInfo is one exported field of a struct, with its positional key.
type fieldInfo struct {
	index int    // in the struct; -1 for the value of a Some
	key   string // "0", "1", ...
	name  string // the Go field name, for messages
	info  *typeInfo
}

// typeBuilder works out the typeInfo of types and of the types they
// contain; recursive types resolve to the same *typeInfo.
type typeBuilder struct {
	infos map[reflect.Type]*typeInfo
}

func (b *typeBuilder) info(t reflect.Type) (*typeInfo, error) {
	if ti, ok := b.infos[t]; ok {
		return ti, nil
	}
	ti := &typeInfo{typ: t}
	b.infos[t] = ti
	var err error
	switch t.Kind() {
	case reflect.Bool:
		ti.kind = kindBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		ti.kind, ti.bits = kindInt, t.Bits()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		ti.kind, ti.bits = kindUint, t.Bits()
	case reflect.Float32, reflect.Float64:
		ti.kind, ti.bits = kindFloat, t.Bits()
	case reflect.String:
		ti.kind = kindString
	case reflect.Struct:
		err = b.structInfo(ti)
	case reflect.Slice:
		ti.kind = kindSlice
		ti.elem, err = b.info(t.Elem())
	case reflect.Array:
		ti.kind, ti.length = kindArray, t.Len()
		ti.elem, err = b.info(t.Elem())
	case reflect.Pointer:
		ti.kind = kindPtr
		ti.elem, err = b.info(t.Elem())
	case reflect.Map:
		ti.kind = kindMap
		switch t.Key().Kind() {
		case reflect.String, reflect.Bool,
			reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		default:
			return nil, fmt.Errorf("%v: map keys must be strings, integers or booleans", t)
		}
		if ti.key, err = b.info(t.Key()); err == nil {
			ti.elem, err = b.info(t.Elem())
		}
	case reflect.Interface:
		ti.kind = kindInterface
	default:
		return nil, fmt.Errorf("%v: unsupported kind %v", t, t.Kind())
	}
	if err != nil {
		return nil, err
	}
	return ti, nil
}

func (b *typeBuilder) structInfo(ti *typeInfo) error {
	t := ti.typ
	if t.Name() == "" {
		return fmt.Errorf("%v: anonymous struct types have no constructor name", t)
	}
	ti.kind, ti.name = kindStruct, t.Name()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		fi, err := b.info(sf.Type)
		if err != nil {
			return fmt.Errorf("%v.%s: %w", t, sf.Name, err)
		}
		ti.fields = append(ti.fields, fieldInfo{
			index: i,
			key:   strconv.Itoa(len(ti.fields)),
			name:  sf.Name,
			info:  fi,
		})
	}
	return nil
}

// variant is a registered constructor of interface-typed values.
type variant struct {
	name string
	typ  reflect.Type // as registered: a struct type or a pointer to one
	info *typeInfo    // of the struct type
}

// registry holds the variants of a serialiser.
type registry struct {
	byName map[string]*variant
	byType map[reflect.Type]*variant // the struct type and its pointer type
}

// newRegistry checks and registers the example values; it panics on an
// invalid one.
func newRegistry(who string, b *typeBuilder, variants []any) *registry {
	r := &registry{
		byName: make(map[string]*variant, len(variants)),
		byType: make(map[reflect.Type]*variant, 2*len(variants)),
	}
	for i, v := range variants {
		if v == nil {
			panic(fmt.Sprintf("transport: %s: variant %d is nil", who, i))
		}
		t := reflect.TypeOf(v)
		st := t
		if st.Kind() == reflect.Pointer {
			st = st.Elem()
		}
		if st.Kind() != reflect.Struct {
			panic(fmt.Sprintf("transport: %s: variant %d (%v) is not a struct or a pointer to one", who, i, t))
		}
		if st.Name() == "" {
			panic(fmt.Sprintf("transport: %s: variant %d (%v) has no type name", who, i, t))
		}
		if prev, dup := r.byName[st.Name()]; dup {
			panic(fmt.Sprintf("transport: %s: variants %v and %v have the same name %q", who, prev.typ, t, st.Name()))
		}
		var info *typeInfo
		if b != nil {
			var err error
			if info, err = b.info(st); err != nil {
				panic(fmt.Sprintf("transport: %s: variant %d: %v", who, i, err))
			}
		}
		vr := &variant{name: st.Name(), typ: t, info: info}
		r.byName[vr.name] = vr
		r.byType[st] = vr
		r.byType[reflect.PointerTo(st)] = vr
	}
	return r
}

// lookup returns the variant called name as a value assignable to target
// (an interface type): the registered type, or else its pointer or struct
// counterpart.
func (r *registry) lookup(name string, target reflect.Type) (*variant, reflect.Type, error) {
	vr := r.byName[name]
	if vr == nil {
		return nil, nil, fmt.Errorf("unknown constructor %q", truncate(name))
	}
	if vr.typ.AssignableTo(target) {
		return vr, vr.typ, nil
	}
	other := reflect.PointerTo(vr.typ)
	if vr.typ.Kind() == reflect.Pointer {
		other = vr.typ.Elem()
	}
	if other.AssignableTo(target) {
		return vr, other, nil
	}
	return nil, nil, fmt.Errorf("constructor %q (%v) does not implement %v", name, vr.typ, target)
}
