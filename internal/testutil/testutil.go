// Package testutil holds helpers shared by the project's tests: polling
// with a deadline instead of sleeping.
package testutil

import (
	"testing"
	"time"
)

// DefaultWait is how long Eventually polls before it fails the test.
const DefaultWait = 20 * time.Second

// Eventually polls cond every few milliseconds until it returns true, and
// fails the test with msg (formatted with args) if it has not after
// DefaultWait. It never asserts on time: the deadline only stops a test that
// would otherwise hang.
func Eventually(tb testing.TB, cond func() bool, msg string, args ...any) {
	tb.Helper()
	deadline := time.Now().Add(DefaultWait)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met after %v: "+msg, append([]any{DefaultWait}, args...)...)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
