package demo_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/lily-go/lily/demo"
	"github.com/lily-go/lily/demo/counter"
	"github.com/lily-go/lily/demo/todo"
	"github.com/lily-go/lily/store"
	"github.com/lily-go/lily/transport"
)

// kind applies one example with a kind's Go store: it returns the model
// after, encoded in the automatic format, or the store's error.
type kind struct {
	apply    func(model, msg []byte) ([]byte, error)
	variants []any
}

func kindOf[M, Msg any](st store.Store[M, Msg], variants []any) kind {
	ser := transport.Automatic[M, Msg](variants...)
	return kind{variants: variants, apply: func(model, msg []byte) ([]byte, error) {
		m, err := ser.DecodeModel(model, transport.FormatJSON)
		if err != nil {
			return nil, err
		}
		x, err := ser.DecodeMessage(msg, transport.FormatJSON)
		if err != nil {
			return nil, err
		}
		next, err := st.Apply(m, x)
		if err != nil {
			return nil, err
		}
		return ser.EncodeModel(next, transport.FormatJSON)
	}}
}

var kinds = map[string]kind{
	"counter": kindOf(counter.Store(), counter.Variants),
	"todo":    kindOf(todo.Store(), todo.Variants),
}

// TestGoUpdateFunctionsMatchTheExamples checks demo/counter and demo/todo
// against examples.json; web's tests check web/kinds.js against it.
func TestGoUpdateFunctionsMatchTheExamples(t *testing.T) {
	examples, err := demo.Examples()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]map[string]bool{}
	for _, ex := range examples {
		t.Run(ex.Kind+"/"+ex.Name, func(t *testing.T) {
			k, ok := kinds[ex.Kind]
			if !ok {
				t.Fatalf("unknown kind %q", ex.Kind)
			}
			var tag struct {
				Name string `json:"_"`
			}
			_ = json.Unmarshal(ex.Message, &tag)
			if seen[ex.Kind] == nil {
				seen[ex.Kind] = map[string]bool{}
			}
			seen[ex.Kind][tag.Name] = true

			got, err := k.apply(ex.Model, ex.Message)
			switch {
			case ex.Rejected:
				if !errors.Is(err, store.ErrRejected) {
					t.Fatalf("got %s, %v; want the message rejected", got, err)
				}
			case err != nil:
				t.Fatalf("apply: %v", err)
			case !sameJSON(t, got, ex.Expected):
				t.Fatalf("got %s\nwant %s", got, ex.Expected)
			}
		})
	}
	// Every message of every kind has an example.
	for name, k := range kinds {
		for _, v := range k.variants {
			if tag := reflect.TypeOf(v).Name(); !seen[name][tag] {
				t.Errorf("kind %s: no example of message %s", name, tag)
			}
		}
	}
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}
