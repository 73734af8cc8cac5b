package transport

import (
	"strings"
	"testing"
)

func TestValidNames(t *testing.T) {
	cases := []struct {
		s              string
		name, clientID bool
	}{
		{"counter", true, true},
		{"a.b-c_D9", true, false},
		{"", false, false},
		{strings.Repeat("x", 64), true, true},
		{strings.Repeat("x", 65), true, false},
		{strings.Repeat("x", 128), true, false},
		{strings.Repeat("x", 129), false, false},
		{"a/b", false, false},
		{"a b", false, false},
		{"é", false, false},
		{"..", true, false},
	}
	for _, tc := range cases {
		if got := ValidName(tc.s); got != tc.name {
			t.Errorf("ValidName(%q) = %v", tc.s, got)
		}
		if got := ValidClientID(tc.s); got != tc.clientID {
			t.Errorf("ValidClientID(%q) = %v", tc.s, got)
		}
	}
}
