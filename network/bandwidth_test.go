package network

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/crib-runtime/crib/api/errdefs"
)

func TestParseBitRate(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    uint64
		wantErr string
	}{
		{in: "1k", want: 1_000},
		{in: "10M", want: 10_000_000},
		{in: "1G", want: 1_000_000_000},
		{in: "2T", want: 2_000_000_000_000},
		{in: "1P", want: 1_000_000_000_000_000},
		{in: "1Ki", want: 1_024},
		{in: "100Mi", want: 100 << 20},
		{in: "1Gi", want: 1 << 30},
		{in: "1.5M", want: 1_500_000},
		{in: ".5M", want: 500_000},
		{in: "5.k", want: 5_000},
		{in: "+2k", want: 2_000},
		{in: "1e6", want: 1_000_000},
		{in: "1E3", want: 1_000},
		{in: "25e2", want: 2_500},
		{in: "15e-1k", wantErr: "bad exponent"},
		{in: "12345e-1", want: 1_235}, // 1234.5, rounded up
		{in: "1500500m", want: 1_501}, // 1500.5, rounded up
		{in: "1000001", want: 1_000_001},
		{in: "999", wantErr: "unreasonably small"},
		{in: "1000m", wantErr: "unreasonably small"},
		{in: "0", wantErr: "unreasonably small"},
		{in: "1Pi", wantErr: "unreasonably large"},
		{in: "2E", wantErr: "unreasonably large"},
		{in: "-10M", wantErr: "negative"},
		{in: "", wantErr: "not a quantity"},
		{in: "M", wantErr: "not a quantity"},
		{in: ".", wantErr: "not a quantity"},
		{in: "10X", wantErr: "unknown suffix"},
		{in: "10 M", wantErr: "unknown suffix"},
		{in: "10M ", wantErr: "unknown suffix"},
		{in: "1.5.5M", wantErr: "unknown suffix"},
		{in: "10mi", wantErr: "unknown suffix"},
		{in: "1e", wantErr: "bad exponent"},
		{in: "1e1.5", wantErr: "bad exponent"},
		{in: "1e99", wantErr: "out of range"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseBitRate(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseBitRate(%q) = %d, %v; want error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseBitRate(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestBandwidthFromAnnotations(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ann     map[string]string
		want    *Bandwidth
		wantErr string
	}{
		{name: "nil", ann: nil, want: nil},
		{name: "unrelated", ann: map[string]string{"a": "b"}, want: nil},
		{name: "ingress", ann: map[string]string{IngressBandwidthAnnotation: "10M"},
			want: &Bandwidth{IngressRate: 10_000_000, IngressBurst: math.MaxUint32}},
		{name: "both", ann: map[string]string{IngressBandwidthAnnotation: "1M", EgressBandwidthAnnotation: "2Mi"},
			want: &Bandwidth{IngressRate: 1_000_000, IngressBurst: math.MaxUint32, EgressRate: 2 << 20, EgressBurst: math.MaxUint32}},
		{name: "bad egress", ann: map[string]string{EgressBandwidthAnnotation: "lots"},
			wantErr: EgressBandwidthAnnotation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := BandwidthFromAnnotations(tc.ann)
			if tc.wantErr != "" {
				if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want invalid argument naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
