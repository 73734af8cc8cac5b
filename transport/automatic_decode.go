package transport

import (
	"errors"
	"reflect"
)

// decoder reads values of the automatic format into Go values.
type decoder struct {
	reg   *registry
	src   source
	depth int
}

func (d *decoder) enter() error {
	d.depth++
	if d.depth > maxDepth {
		return failf("nested more than %d levels deep", maxDepth)
	}
	return nil
}

// value decodes into v, which is settable and holds a zero value.
func (d *decoder) value(v reflect.Value, ti *typeInfo) error {
	var err error
	switch ti.kind {
	case kindBool:
		var b bool
		if b, err = d.src.readBool(); err == nil {
			v.SetBool(b)
		}
	case kindInt:
		var i int64
		if i, err = d.src.readInt(ti.bits); err == nil {
			v.SetInt(i)
		}
	case kindUint:
		var u uint64
		if u, err = d.src.readUint(ti.bits); err == nil {
			v.SetUint(u)
		}
	case kindFloat:
		var f float64
		if f, err = d.src.readFloat(ti.bits); err == nil {
			v.SetFloat(f)
		}
	case kindString:
		var s string
		if s, err = d.src.readString(); err == nil {
			v.SetString(s)
		}
	case kindStruct:
		return d.constructor(v, ti.name, ti.fields)
	case kindPtr:
		return d.option(v, ti)
	case kindInterface:
		return d.iface(v)
	case kindSlice:
		return d.slice(v, ti)
	case kindArray:
		return d.array(v, ti)
	case kindMap:
		return d.mapValue(v, ti)
	}
	if err != nil {
		return fail(err)
	}
	return nil
}

// constructor decodes {"_":name,"0":...} into the fields of v. A field with
// index -1 stands for v itself (the value of a Some).
func (d *decoder) constructor(v reflect.Value, name string, fields []fieldInfo) error {
	if err := d.enter(); err != nil {
		return err
	}
	n, err := d.src.beginObject()
	if err != nil {
		return fail(want(err, "a "+name+" constructor object"))
	}
	var seenSmall uint64
	var seenLarge []bool
	if len(fields) > 64 {
		seenLarge = make([]bool, len(fields))
	}
	seen, sawName := 0, false
	for i := 0; ; i++ {
		key, ok, err := d.src.nextKey(i, n)
		if err != nil {
			return fail(err)
		}
		if !ok {
			break
		}
		if len(key) == 1 && key[0] == '_' {
			if sawName {
				return failf(`duplicate key "_"`)
			}
			sawName = true
			got, err := d.src.readString()
			if err != nil {
				return at(fail(err), "_")
			}
			if got != name {
				return failf("expected constructor %q, got %q", name, truncate(got))
			}
			continue
		}
		idx, ok := parseIndex(key)
		if !ok || idx >= len(fields) {
			return failf("unexpected key %q: constructor %s has %d fields", truncate(string(key)), name, len(fields))
		}
		if seenLarge != nil {
			if seenLarge[idx] {
				return failf("duplicate key %q", fields[idx].key)
			}
			seenLarge[idx] = true
		} else {
			if seenSmall&(1<<idx) != 0 {
				return failf("duplicate key %q", fields[idx].key)
			}
			seenSmall |= 1 << idx
		}
		seen++
		f := &fields[idx]
		target := v
		if f.index >= 0 {
			target = v.Field(f.index)
		}
		if err := d.value(target, f.info); err != nil {
			return at(err, f.key)
		}
	}
	if !sawName {
		return failf(`missing constructor name "_" (expected %q)`, name)
	}
	if seen < len(fields) {
		for i := range fields {
			if seenLarge != nil && !seenLarge[i] || seenLarge == nil && seenSmall&(1<<i) == 0 {
				return failf("missing field %d of %s", i, name)
			}
		}
	}
	d.depth--
	return nil
}

// want rewrites what a mismatch error expected.
func want(err error, what string) error {
	var m *mismatch
	if errors.As(err, &m) {
		return &mismatch{want: what, got: m.got}
	}
	return err
}

// parseIndex parses a positional key: decimal digits without leading zeros.
func parseIndex(key []byte) (int, bool) {
	if len(key) == 0 || len(key) > 6 || (key[0] == '0' && len(key) > 1) {
		return 0, false
	}
	n := 0
	for _, c := range key {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// peekName returns the "_" of the constructor object that comes next,
// without consuming it.
func (d *decoder) peekName() (string, error) {
	start := d.src.mark()
	defer d.src.reset(start)
	n, err := d.src.beginObject()
	if err != nil {
		return "", fail(want(err, "a constructor object"))
	}
	for i := 0; ; i++ {
		key, ok, err := d.src.nextKey(i, n)
		if err != nil {
			return "", fail(err)
		}
		if !ok {
			return "", failf(`missing constructor name "_"`)
		}
		if len(key) == 1 && key[0] == '_' {
			name, err := d.src.readString()
			if err != nil {
				return "", at(fail(err), "_")
			}
			return name, nil
		}
		if err := d.src.skip(); err != nil {
			return "", fail(err)
		}
	}
}

// someField is the one field of a Some: the pointee itself.
func someField(elem *typeInfo) [1]fieldInfo {
	return [1]fieldInfo{{index: -1, key: "0", info: elem}}
}

// option decodes None or Some into a pointer.
func (d *decoder) option(v reflect.Value, ti *typeInfo) error {
	name, err := d.peekName()
	if err != nil {
		return err
	}
	switch name {
	case "None":
		return d.constructor(v, "None", nil) // v stays nil
	case "Some":
		nv := reflect.New(ti.elem.typ)
		some := someField(ti.elem)
		if err := d.constructor(nv.Elem(), "Some", some[:]); err != nil {
			return err
		}
		v.Set(nv)
		return nil
	}
	return failf(`expected constructor "Some" or "None", got %q`, truncate(name))
}

// iface decodes a registered variant, or null, into an interface.
func (d *decoder) iface(v reflect.Value) error {
	null, err := d.src.isNull()
	if err != nil {
		return fail(err)
	}
	if null {
		return nil
	}
	name, err := d.peekName()
	if err != nil {
		return err
	}
	vr, t, err := d.reg.lookup(name, v.Type())
	if err != nil {
		return fail(err)
	}
	sv := reflect.New(vr.info.typ)
	if err := d.constructor(sv.Elem(), vr.name, vr.info.fields); err != nil {
		return err
	}
	if t.Kind() == reflect.Pointer {
		v.Set(sv)
	} else {
		v.Set(sv.Elem())
	}
	return nil
}

// preallocLimit bounds the elements allocated before they are read, so that
// a short input cannot claim a huge array.
const preallocLimit = 1024

func (d *decoder) slice(v reflect.Value, ti *typeInfo) error {
	if err := d.enter(); err != nil {
		return err
	}
	n, err := d.src.beginArray()
	if err != nil {
		return fail(err)
	}
	// v is settable, so it can grow in place; an empty array leaves it nil.
	if n > 0 {
		v.Set(reflect.MakeSlice(ti.typ, 0, min(n, preallocLimit)))
	}
	for i := 0; ; i++ {
		ok, err := d.src.more(i, n)
		if err != nil {
			return fail(err)
		}
		if !ok {
			break
		}
		if v.Len() == v.Cap() {
			v.Grow(max(4, v.Cap()))
		}
		v.SetLen(i + 1)
		if err := d.value(v.Index(i), ti.elem); err != nil {
			return atIndex(err, i)
		}
	}
	if v.Len() == 0 {
		v.SetZero()
	}
	d.depth--
	return nil
}

func (d *decoder) array(v reflect.Value, ti *typeInfo) error {
	if err := d.enter(); err != nil {
		return err
	}
	n, err := d.src.beginArray()
	if err != nil {
		return fail(err)
	}
	i := 0
	for ; ; i++ {
		ok, err := d.src.more(i, n)
		if err != nil {
			return fail(err)
		}
		if !ok {
			break
		}
		if i >= ti.length {
			return failf("expected %d elements, got more", ti.length)
		}
		if err := d.value(v.Index(i), ti.elem); err != nil {
			return atIndex(err, i)
		}
	}
	if i != ti.length {
		return failf("expected %d elements, got %d", ti.length, i)
	}
	d.depth--
	return nil
}

func (d *decoder) mapValue(v reflect.Value, ti *typeInfo) error {
	if err := d.enter(); err != nil {
		return err
	}
	n, err := d.src.beginArray()
	if err != nil {
		return fail(want(err, "an array of [key, value] pairs"))
	}
	var mv reflect.Value
	for i := 0; ; i++ {
		ok, err := d.src.more(i, n)
		if err != nil {
			return fail(err)
		}
		if !ok {
			break
		}
		if !mv.IsValid() {
			mv = reflect.MakeMapWithSize(ti.typ, min(max(n, 1), preallocLimit))
		}
		k := reflect.New(ti.key.typ).Elem()
		e := reflect.New(ti.elem.typ).Elem()
		if err := d.pair(k, e, ti); err != nil {
			return atIndex(err, i)
		}
		if mv.MapIndex(k).IsValid() {
			return atIndex(failf("duplicate map key"), i)
		}
		mv.SetMapIndex(k, e)
	}
	if mv.IsValid() {
		v.Set(mv)
	}
	d.depth--
	return nil
}

// pair decodes one [key, value] array.
func (d *decoder) pair(k, e reflect.Value, ti *typeInfo) error {
	n, err := d.src.beginArray()
	if err != nil {
		return fail(want(err, "a [key, value] pair"))
	}
	for i := 0; ; i++ {
		ok, err := d.src.more(i, n)
		if err != nil {
			return fail(err)
		}
		if !ok {
			if i != 2 {
				return failf("expected a [key, value] pair, got %d elements", i)
			}
			return nil
		}
		switch i {
		case 0:
			err = d.value(k, ti.key)
		case 1:
			err = d.value(e, ti.elem)
		default:
			return failf("expected a [key, value] pair, got more elements")
		}
		if err != nil {
			return atIndex(err, i)
		}
	}
}
