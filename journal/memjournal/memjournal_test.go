package memjournal_test

import (
	"testing"

	"github.com/lily-go/lily/journal"
	"github.com/lily-go/lily/journal/journaltest"
	"github.com/lily-go/lily/journal/memjournal"
)

func TestConformance(t *testing.T) {
	journaltest.Run(t, journaltest.Factory{
		New: func(t *testing.T) journal.Journal {
			j := memjournal.New()
			t.Cleanup(func() { _ = j.Close() })
			return j
		},
	})
}
