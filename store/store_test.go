package store_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/lily-go/lily/store"
)

type msg struct {
	add   int
	panic bool
}

func update(model int, m msg) int {
	if m.panic {
		panic("bad message")
	}
	return model + m.add
}

func TestApply(t *testing.T) {
	positive := func(_ int, m msg) error {
		if m.add < 0 {
			return errors.New("negative")
		}
		return nil
	}
	cases := []struct {
		name    string
		st      store.Store[int, msg]
		msg     msg
		want    int
		wantErr string
	}{
		{"applies", store.New(10, update), msg{add: 5}, 15, ""},
		{"panic rejects", store.New(10, update), msg{panic: true}, 10, "update panicked: bad message"},
		{"validator allows", store.New(10, update).WithValidator(positive), msg{add: 1}, 11, ""},
		{"validator refuses", store.New(10, update).WithValidator(positive), msg{add: -1}, 10, "negative"},
		{"no update function", store.New[int, msg](10, nil), msg{add: 1}, 10, "no update function"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.st.Apply(10, tc.msg)
			if got != tc.want {
				t.Errorf("model %d, want %d", got, tc.want)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, store.ErrRejected) {
				t.Fatalf("error %v, want one wrapping ErrRejected that says %q", err, tc.wantErr)
			}
		})
	}
}

func TestPanicErrorKeepsTheStack(t *testing.T) {
	_, err := store.New(0, update).Apply(0, msg{panic: true})
	var pe *store.PanicError
	if !errors.As(err, &pe) || pe.Value != "bad message" || !strings.Contains(string(pe.Stack), "update") {
		t.Fatalf("got %#v, want a PanicError with the value and a stack", err)
	}
}

func TestInitial(t *testing.T) {
	if got := store.New(42, update).Initial(); got != 42 {
		t.Fatalf("Initial() = %d", got)
	}
}

func ExampleNew() {
	type Counter struct{ Count int }
	type Add struct{ N int }
	counter := store.New(Counter{}, func(m Counter, msg Add) Counter {
		m.Count += msg.N
		return m
	})
	model, _ := counter.Apply(counter.Initial(), Add{N: 3})
	model, _ = counter.Apply(model, Add{N: 4})
	fmt.Println(model.Count)
	// Output: 7
}

func ExampleStore_WithValidator() {
	counter := store.New(0, func(m, add int) int { return m + add }).
		WithValidator(func(_, add int) error {
			if add < 0 {
				return errors.New("only positive numbers")
			}
			return nil
		})
	model, err := counter.Apply(1, -5)
	fmt.Println(model, err)
	// Output: 1 store: message rejected: only positive numbers
}
