package state

import "testing"

func TestHostID(t *testing.T) {
	maps := []IDMapping{{ContainerID: 0, HostID: 200000, Size: 1000}, {ContainerID: 5000, HostID: 900000, Size: 10}}
	tests := []struct {
		id     uint32
		want   uint32
		wantOK bool
	}{
		{0, 200000, true},
		{999, 200999, true},
		{1000, 0, false},
		{5009, 900009, true},
		{5010, 0, false},
		{1<<32 - 1, 0, false},
	}
	for _, tc := range tests {
		got, ok := HostID(maps, tc.id)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("HostID(%d) = %d, %v; want %d, %v", tc.id, got, ok, tc.want, tc.wantOK)
		}
	}
	if _, ok := HostID(nil, 0); ok {
		t.Error("HostID with no mappings reported a host ID")
	}
}
