package sandbox

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestNewID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{64}$`)
	a, _ := newID()
	b, _ := newID()
	if !re.MatchString(a) || !re.MatchString(b) || a == b {
		t.Errorf("ids %q %q", a, b)
	}
}

func TestParseNetDev(t *testing.T) {
	const netDev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0       0          0
  eth0:    9876      54    3    2    0     0          0         0     4321      32    1    4    0     0       0          0
`
	tests := []struct {
		name    string
		data    string
		want    []InterfaceStats
		wantErr bool
	}{
		{"lo left out", netDev, []InterfaceStats{{
			Name:    "eth0",
			RxBytes: 9876, RxPackets: 54, RxErrors: 3, RxDropped: 2,
			TxBytes: 4321, TxPackets: 32, TxErrors: 1, TxDropped: 4,
		}}, false},
		{"headers only", strings.Join(strings.SplitN(netDev, "\n", 3)[:2], "\n"), nil, false},
		{"short line", "eth0: 1 2 3\n", nil, true},
		{"not a number", "eth0: x 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseNetDev([]byte(tc.data))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, wantErr %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
