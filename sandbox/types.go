package sandbox

import (
	"github.com/crib-runtime/crib/sandbox/container"
	"github.com/crib-runtime/crib/sandbox/events"
	"github.com/crib-runtime/crib/sandbox/pod"
)

// The types server/ uses, from the half that defines them.

type (
	// View is a pod's record plus its readiness.
	View = pod.View
	// Filter selects pods in List.
	Filter = pod.Filter
	// ContainerView is a container's record plus its running state.
	ContainerView = container.ContainerView
	// ContainerState is a container's state as crib reports it.
	ContainerState = container.ContainerState
	// ContainerRequest is a container for CreateContainer.
	ContainerRequest = container.ContainerRequest
	// ContainerFilter selects containers in Containers.
	ContainerFilter = container.ContainerFilter
	// ContainerStats is one sample of a container's resource use.
	ContainerStats = container.ContainerStats
	// ResourceUpdate is a container's new resources.
	ResourceUpdate = container.ResourceUpdate
	// ExecOptions, ExecProcess and ExecResult are exec's.
	ExecOptions = container.ExecOptions
	ExecProcess = container.ExecProcess
	ExecResult  = container.ExecResult
	// AttachOptions and AttachSession are attach's.
	AttachOptions = container.AttachOptions
	AttachSession = container.AttachSession
	// EventType is a container lifecycle event; Event one event.
	EventType = events.Type
	Event     = events.Event
)

// The states of a container.
const (
	ContainerUnknown = container.ContainerUnknown
	ContainerCreated = container.ContainerCreated
	ContainerRunning = container.ContainerRunning
	ContainerExited  = container.ContainerExited
)

// Container events.
const (
	EventCreated = events.Created
	EventStarted = events.Started
	EventStopped = events.Stopped
	EventDeleted = events.Deleted
)

// ShimDiedReason is the reason ContainerStatus gives a container whose
// pod's shim died before recording its exit.
const ShimDiedReason = container.ShimDiedReason
