package network

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/crib-runtime/crib/api/errdefs"
)

// The pod annotations kubelet uses for traffic shaping.
const (
	IngressBandwidthAnnotation = "kubernetes.io/ingress-bandwidth"
	EgressBandwidthAnnotation  = "kubernetes.io/egress-bandwidth"
)

// Bandwidth limits a pod's traffic as the CNI bandwidth plugin takes it
// (capability "bandwidth"): rates in bits per second, bursts in bits. Zero
// means no limit in that direction.
type Bandwidth struct {
	IngressRate  uint64 `json:"ingressRate,omitempty"`
	IngressBurst uint64 `json:"ingressBurst,omitempty"`
	EgressRate   uint64 `json:"egressRate,omitempty"`
	EgressBurst  uint64 `json:"egressBurst,omitempty"`
}

// defaultBurst is the burst given with a rate from an annotation, which has
// none; it is what containerd gives, and the plugin needs one with a rate.
const defaultBurst = math.MaxUint32

// Kubelet's bounds for a bandwidth annotation, in bits per second.
const (
	minBitRate = 1_000                 // 1k
	maxBitRate = 1_000_000_000_000_000 // 1P
)

// BandwidthFromAnnotations reads the pod's bandwidth annotations. It returns
// nil when neither is set, and an error wrapping errdefs.ErrInvalidArgument
// naming the annotation when a value is not a quantity from 1k to 1P.
func BandwidthFromAnnotations(annotations map[string]string) (*Bandwidth, error) {
	var bw Bandwidth
	for _, a := range []struct {
		key         string
		rate, burst *uint64
	}{
		{IngressBandwidthAnnotation, &bw.IngressRate, &bw.IngressBurst},
		{EgressBandwidthAnnotation, &bw.EgressRate, &bw.EgressBurst},
	} {
		value, ok := annotations[a.key]
		if !ok {
			continue
		}
		rate, err := ParseBitRate(value)
		if err != nil {
			return nil, errdefs.InvalidArgument("annotation %s: %v", a.key, err)
		}
		*a.rate, *a.burst = rate, defaultBurst
	}
	if bw == (Bandwidth{}) {
		return nil, nil
	}
	return &bw, nil
}

// ParseBitRate parses a bandwidth annotation value, a Kubernetes resource
// quantity such as "10M", "1.5G", "512Ki" or "1e6", into bits per second,
// rounded up. Like kubelet it accepts only rates from 1k to 1P.
func ParseBitRate(value string) (uint64, error) {
	q, err := parseQuantity(value)
	if err != nil {
		return 0, err
	}
	// Round up to a whole number, as resource.Quantity.Value does.
	n := new(big.Int).Quo(q.Num(), q.Denom())
	if new(big.Rat).SetInt(n).Cmp(q) < 0 {
		n.Add(n, big.NewInt(1))
	}
	if n.Cmp(big.NewInt(minBitRate)) < 0 {
		return 0, fmt.Errorf("%q is unreasonably small (< 1kbit)", value)
	}
	if n.Cmp(big.NewInt(maxBitRate)) > 0 {
		return 0, fmt.Errorf("%q is unreasonably large (> 1Pbit)", value)
	}
	return n.Uint64(), nil
}

// maxExponent bounds "e<n>" suffixes, so parsing never builds huge numbers;
// anything near it is far outside the accepted rates anyway.
const maxExponent = 64

// parseQuantity parses the resource.Quantity syntax:
//
//	quantity ::= [sign] number suffix
//	number   ::= digits | digits "." [digits] | "." digits
//	suffix   ::= "" | "m" | "k" | "M" | "G" | "T" | "P" | "E"   (decimal SI)
//	           | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"          (binary SI)
//	           | ("e" | "E") [sign] digits                         (exponent)
func parseQuantity(s string) (*big.Rat, error) {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits, dot := 0, false
	for ; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' {
			digits++
		} else if c == '.' && !dot {
			dot = true
		} else {
			break
		}
	}
	if digits == 0 {
		return nil, fmt.Errorf("%q is not a quantity", s)
	}
	num := s[:i]
	if strings.HasSuffix(num, ".") {
		num += "0"
	}
	q, ok := new(big.Rat).SetString(num)
	if !ok {
		return nil, fmt.Errorf("%q is not a quantity", s)
	}
	if q.Sign() < 0 {
		return nil, fmt.Errorf("%q is negative", s)
	}
	mult, err := suffixMultiplier(s[i:])
	if err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	return q.Mul(q, mult), nil
}

func suffixMultiplier(suffix string) (*big.Rat, error) {
	pow := func(base, exp int64) *big.Rat {
		return new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(base), big.NewInt(exp), nil))
	}
	switch suffix {
	case "":
		return big.NewRat(1, 1), nil
	case "m":
		return big.NewRat(1, 1000), nil
	case "Ki", "Mi", "Gi", "Ti", "Pi", "Ei":
		return pow(2, 10*int64(1+strings.Index("KMGTPE", suffix[:1]))), nil
	case "k", "M", "G", "T", "P", "E":
		return pow(10, 3*int64(1+strings.Index("kMGTPE", suffix))), nil
	}
	if suffix[0] != 'e' && suffix[0] != 'E' {
		return nil, fmt.Errorf("unknown suffix %q", suffix)
	}
	exp, err := strconv.ParseInt(suffix[1:], 10, 32)
	if err != nil {
		return nil, fmt.Errorf("bad exponent %q", suffix)
	}
	if exp > maxExponent || exp < -maxExponent {
		return nil, fmt.Errorf("exponent %q out of range", suffix)
	}
	if exp < 0 {
		return new(big.Rat).Inv(pow(10, -exp)), nil
	}
	return pow(10, exp), nil
}
