package pod

// clampOOMScoreAdj raises want to floor: without CAP_SYS_RESOURCE a value
// below the current one cannot be written, and kubelet's -998 for sandboxes
// must not fail the pod.
func clampOOMScoreAdj(want, floor int) int {
	if want < floor {
		return floor
	}
	return want
}
