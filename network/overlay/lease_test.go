package overlay

import (
	"strings"
	"testing"
)

func TestIsNodeName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"node-1", true},
		{"a", true},
		{"n1.example.com", true},
		{strings.Repeat("a", 253), true},
		{strings.Repeat("a", 254), false},
		{"", false},
		{"-node", false},
		{"node-", false},
		{".node", false},
		{"Node", false},
		{"node_1", false},
	}
	for _, tc := range tests {
		if got := isNodeName(tc.name); got != tc.ok {
			t.Errorf("isNodeName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}
