// Package store holds what the sandbox manager keeps of pods and containers
// in memory, in one form for both: a Registrar that reserves names for IDs,
// and an Index that finds objects by full ID or unique ID prefix.
//
// Each has its own lock, taken last: callers may hold a pod's or a
// container's lock while they call, never the reverse.
package store
