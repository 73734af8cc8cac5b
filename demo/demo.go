// Package demo holds what lilyd's demo kinds (demo/counter, demo/todo)
// share with their JavaScript twins in the demo page (web/kinds.js):
// Examples, one table of (model, message, expected model) examples in
// lily's automatic format that both the Go and the JavaScript update
// functions are checked against, so that they cannot drift apart.
package demo

import (
	_ "embed" // for examples.json
	"encoding/json"
	"fmt"
)

// ExamplesJSON is examples.json: a JSON array of Example.
//
//go:embed examples.json
var ExamplesJSON []byte

// Example is one row of the table: applying Message to Model with the
// kind's update function (and its validator) gives Expected, or is refused
// when Rejected is set.
type Example struct {
	Kind     string          `json:"kind"`     // "counter" or "todo"
	Name     string          `json:"name"`     // what the example shows
	Model    json.RawMessage `json:"model"`    // the model before, automatic format
	Message  json.RawMessage `json:"message"`  // the message, automatic format
	Expected json.RawMessage `json:"expected"` // the model after; absent when Rejected
	Rejected bool            `json:"rejected"` // the store refuses the message
}

// Examples returns the table.
func Examples() ([]Example, error) {
	var ex []Example
	if err := json.Unmarshal(ExamplesJSON, &ex); err != nil {
		return nil, fmt.Errorf("demo: examples.json: %w", err)
	}
	return ex, nil
}
