// Package todo is the "todo" demo kind of lilyd: a list of items that
// clients add, toggle, rename and remove.
package todo

import (
	"errors"
	"fmt"

	"github.com/lily-go/lily/store"
)

// MaxItems bounds the list, and MaxTitle the length of a title in bytes.
const (
	MaxItems = 1000
	MaxTitle = 200
)

// Item is one entry of the list. IDs are given by the store, in order.
type Item struct {
	ID    int
	Title string
	Done  bool
}

// Model is the list and the id the next item gets.
type Model struct {
	Items  []Item
	NextID int
}

// Msg is a todo message: AddItem, Toggle, Rename or Remove.
type Msg interface{ isTodoMsg() }

// AddItem appends an item with the given title.
type AddItem struct {
	Title string
}

// Toggle flips an item's Done.
type Toggle struct {
	ID int
}

// Rename changes an item's title.
type Rename struct {
	ID    int
	Title string
}

// Remove deletes an item.
type Remove struct {
	ID int
}

func (AddItem) isTodoMsg() {}
func (Toggle) isTodoMsg()  {}
func (Rename) isTodoMsg()  {}
func (Remove) isTodoMsg()  {}

// Variants lists the message types, for transport.Automatic.
var Variants = []any{AddItem{}, Toggle{}, Rename{}, Remove{}}

// Update applies one message. Messages naming an item that does not exist
// change nothing (another client may have removed it first).
func Update(model Model, msg Msg) Model {
	switch msg := msg.(type) {
	case AddItem:
		items := make([]Item, len(model.Items), len(model.Items)+1)
		copy(items, model.Items)
		model.Items = append(items, Item{ID: model.NextID + 1, Title: msg.Title})
		model.NextID++
	case Toggle:
		model.Items = mapItem(model.Items, msg.ID, func(it Item) Item { it.Done = !it.Done; return it })
	case Rename:
		model.Items = mapItem(model.Items, msg.ID, func(it Item) Item { it.Title = msg.Title; return it })
	case Remove:
		items := make([]Item, 0, len(model.Items))
		for _, it := range model.Items {
			if it.ID != msg.ID {
				items = append(items, it)
			}
		}
		model.Items = items
	}
	return model
}

// mapItem returns a copy of items with f applied to the item with id; the
// model a client or a hook holds is never changed under it.
func mapItem(items []Item, id int, f func(Item) Item) []Item {
	out := make([]Item, len(items))
	for i, it := range items {
		if it.ID == id {
			it = f(it)
		}
		out[i] = it
	}
	return out
}

// Validate refuses messages that would grow the list or a title past its
// bound.
func Validate(model Model, msg Msg) error {
	switch msg := msg.(type) {
	case AddItem:
		if len(model.Items) >= MaxItems {
			return fmt.Errorf("todo: the list is full (%d items)", MaxItems)
		}
		return checkTitle(msg.Title)
	case Rename:
		return checkTitle(msg.Title)
	}
	return nil
}

func checkTitle(title string) error {
	if title == "" {
		return errors.New("todo: a title must not be empty")
	}
	if len(title) > MaxTitle {
		return fmt.Errorf("todo: a title must be at most %d bytes", MaxTitle)
	}
	return nil
}

// Store returns the todo store, starting empty.
func Store() store.Store[Model, Msg] {
	return store.New(Model{}, Update).WithValidator(Validate)
}
