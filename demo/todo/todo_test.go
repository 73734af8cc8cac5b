package todo_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/lily-go/lily/demo/todo"
)

func TestUpdate(t *testing.T) {
	two := todo.Model{Items: []todo.Item{{ID: 1, Title: "milk"}, {ID: 2, Title: "eggs", Done: true}}, NextID: 2}
	cases := []struct {
		name  string
		model todo.Model
		msg   todo.Msg
		want  todo.Model
	}{
		{"add to empty", todo.Model{}, todo.AddItem{Title: "milk"}, todo.Model{Items: []todo.Item{{ID: 1, Title: "milk"}}, NextID: 1}},
		{"add", two, todo.AddItem{Title: "tea"}, todo.Model{Items: append(append([]todo.Item{}, two.Items...), todo.Item{ID: 3, Title: "tea"}), NextID: 3}},
		{"toggle", two, todo.Toggle{ID: 1}, todo.Model{Items: []todo.Item{{ID: 1, Title: "milk", Done: true}, {ID: 2, Title: "eggs", Done: true}}, NextID: 2}},
		{"rename", two, todo.Rename{ID: 2, Title: "ham"}, todo.Model{Items: []todo.Item{{ID: 1, Title: "milk"}, {ID: 2, Title: "ham", Done: true}}, NextID: 2}},
		{"remove", two, todo.Remove{ID: 1}, todo.Model{Items: []todo.Item{{ID: 2, Title: "eggs", Done: true}}, NextID: 2}},
		{"unknown id changes nothing", two, todo.Toggle{ID: 7}, two},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := todo.Model{Items: append([]todo.Item(nil), tc.model.Items...), NextID: tc.model.NextID}
			got := todo.Update(tc.model, tc.msg)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Update(%+v, %#v) = %+v, want %+v", tc.model, tc.msg, got, tc.want)
			}
			if !reflect.DeepEqual(tc.model, before) {
				t.Fatalf("Update changed the model it was given: %+v", tc.model)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	full := todo.Model{Items: make([]todo.Item, todo.MaxItems)}
	cases := []struct {
		name    string
		model   todo.Model
		msg     todo.Msg
		wantErr string
	}{
		{"add", todo.Model{}, todo.AddItem{Title: "x"}, ""},
		{"empty title", todo.Model{}, todo.AddItem{}, "empty"},
		{"long title", todo.Model{}, todo.Rename{ID: 1, Title: strings.Repeat("x", todo.MaxTitle+1)}, "at most"},
		{"full list", full, todo.AddItem{Title: "x"}, "full"},
		{"toggle always fine", full, todo.Toggle{ID: 1}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := todo.Validate(tc.model, tc.msg)
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Validate = %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}
