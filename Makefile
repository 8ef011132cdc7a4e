# crib — build, test and benchmark. Everything runs as root on Debian 12.
GO        ?= go
BIN       ?= $(CURDIR)/bin
PREFIX    ?= /usr/local
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
TOOLS_DIR ?= $(or $(CRIB_TOOLS_DIR),/var/cache/crib/tools)
# Every script and test reads the tool cache from CRIB_TOOLS_DIR.
export CRIB_TOOLS_DIR := $(TOOLS_DIR)
CRICTL    ?= $(TOOLS_DIR)/cri-tools-v1.36.0/crictl
CRITEST   ?= $(TOOLS_DIR)/cri-tools-v1.36.0/critest
GOTAGS    := seccomp containers_image_openpgp exclude_graphdriver_btrfs exclude_graphdriver_zfs exclude_disk_quota containers_image_docker_daemon_stub nri_no_wasm
LDFLAGS   := -s -w -X main.version=$(VERSION)

export CRIB_BIN_DIR := $(BIN)
export CRICTL CRITEST

.PHONY: all build build-test deps tools kube install test test-unit fuzz test-integration test-critest test-node bench bench-cluster bench-node bench-base critest-containerd lint clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -tags '$(GOTAGS)' -ldflags '$(LDFLAGS)' -o $(BIN)/cribd ./cmd/cribd
	$(GO) build -tags '$(GOTAGS)' -ldflags '$(LDFLAGS)' -o $(BIN)/crib-shim ./cmd/crib-shim
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/crib-vxlan ./cmd/crib-vxlan
	$(CC) -static -Os -Wall -o $(BIN)/crib-pause cmd/crib-pause/pause.c

# build-test adds bin/cribd-failpoints: cribd with the failpoints tag
# (internal/failpoint), which dies by SIGKILL at the step CRIB_FAILPOINT
# names. Only tests run it; `make build` and install never ship it.
build-test: build
	$(GO) build -tags '$(GOTAGS) failpoints' -ldflags '$(LDFLAGS)' -o $(BIN)/cribd-failpoints ./cmd/cribd

# deps installs the Debian packages crib needs to build and test.
deps:
	scripts/install-deps.sh

# tools builds the tools the tests run into $(TOOLS_DIR) (cached): first the
# multi-call Kubernetes binary (kube, the longest build: about 10 minutes
# cold), then crictl and critest v1.36.0 and CoreDNS v1.15.0. kube comes
# first so that a fresh CI machine spends its longest build before anything
# else, as issue 15's CI time budget asks. tests/images/build.sh puts
# CoreDNS in the coredns test image; building it here keeps its first,
# minutes-long build out of the first test binary's go test -timeout.
tools: kube
	scripts/build-cri-tools.sh
	scripts/build-coredns.sh >/dev/null

# kube builds kube-apiserver, kube-controller-manager, kube-scheduler,
# kube-proxy, kubectl, kubelet and etcd at v1.37.2 as one multi-call binary
# from the wrapper module tests/cluster/kube (scripts/build-kube.sh, cached
# in $(TOOLS_DIR)/kube-v1.37.2/ with a symlink per name).
kube:
	scripts/build-kube.sh >/dev/null

install: build
	install -D -m 0755 $(BIN)/cribd $(DESTDIR)$(PREFIX)/bin/cribd
	install -D -m 0755 $(BIN)/crib-shim $(DESTDIR)$(PREFIX)/bin/crib-shim
	install -D -m 0755 $(BIN)/crib-pause $(DESTDIR)$(PREFIX)/bin/crib-pause
	install -D -m 0755 $(BIN)/crib-vxlan $(DESTDIR)/opt/cni/bin/crib-vxlan

# TEST_TAGS turns on every test suite's files at once for vet: each suite
# is a package of its own under tests/ and no file there is built only
# without a tag, so one vet pass sees them all (one load of the packages
# instead of eight, about 3 minutes less on a cold cache).
TEST_TAGS := integration e2e node cluster bench
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet -tags '$(GOTAGS)' ./...
	$(GO) vet -tags '$(GOTAGS) failpoints' ./internal/failpoint/ ./cmd/cribd/
	$(GO) vet -tags '$(GOTAGS) $(TEST_TAGS)' ./tests/...
	$(GO) vet ./tests/cluster/testdata/tcpstream/

test-unit: build
	$(GO) test -tags '$(GOTAGS)' -count=1 ./api/... ./server/... ./sandbox/... ./image/... ./network/... ./cmd/... ./internal/... ./tests/harness/...

# fuzz runs each go test -fuzz target for FUZZTIME: the CRI→OCI translation
# (sandbox/ocispec FuzzBuild) and RunPodSandbox's validation (server
# FuzzSandboxSpec). Their seed corpora (testdata/fuzz/) also run as plain
# tests in test-unit. A failing input is written to testdata/fuzz/<target>/:
# fix the cause and check the input in as a seed.
FUZZTIME ?= 20s
fuzz:
	$(GO) test -tags '$(GOTAGS)' -run '^$$' -fuzz '^FuzzBuild$$' -fuzztime $(FUZZTIME) ./sandbox/ocispec/
	$(GO) test -tags '$(GOTAGS)' -run '^$$' -fuzz '^FuzzSandboxSpec$$' -fuzztime $(FUZZTIME) ./server/

test-integration: build-test tools
	$(GO) test -tags '$(GOTAGS) integration' -count=1 -v -timeout 30m ./tests/integration/...

test-critest: build tools
	tests/critest/run.sh

# test-e2e runs a real kubelet v1.37 (scripts/build-kubelet.sh: the
# kubelet of the multi-call binary `make kube` builds, which `tools` has
# built) standalone against cribd: tests/e2e.
.PHONY: test-e2e
test-e2e: build tools
	KUBELET=$$(scripts/build-kubelet.sh) && export KUBELET && \
	$(GO) test -tags e2e -count=1 -v -timeout 30m ./tests/e2e/...

# test-cluster runs crib as the nodes of a real Kubernetes cluster: a
# control plane and three nodes (network namespaces on a test bridge, each
# with cribd, kubelet and kube-proxy) from one multi-call Kubernetes v1.37
# binary (scripts/build-kube.sh, cached in $(TOOLS_DIR); about 10 minutes
# to build the first time), and a flannel node beside them: kubelet on
# containerd v2.4.2 (scripts/build-containerd.sh) with flanneld
# (scripts/build-flannel.sh): tests/cluster.
.PHONY: test-cluster
test-cluster: build tools
	KUBE_DIR=$$(scripts/build-kube.sh) && export KUBE_DIR && \
	paths=$$(scripts/build-containerd.sh) && \
	CRIB_CONTAINERD_DIR=$$(dirname "$$(printf '%s\n' "$$paths" | head -n1)") && export CRIB_CONTAINERD_DIR && \
	FLANNELD=$$(scripts/build-flannel.sh) && export FLANNELD && \
	$(GO) test -tags cluster -count=1 -v -timeout 30m ./tests/cluster/...

# test-node is the VM lane: a Debian 12 guest with systemd, cgroup v2 and
# AppArmor (scripts/build-guest.sh, cached in $(TOOLS_DIR); a few minutes
# the first time), booted under QEMU (software emulation) with crib
# installed as the shipped crib.service, runs tests/node's suite (build tag
# node) with crictl and kubelet v1.37. tests/node/suite.sh; tests/README.md.
test-node: build tools guest
	tests/images/build.sh
	scripts/build-kubelet.sh >/dev/null
	GOTAGS='$(GOTAGS)' tests/node/suite.sh

# test is the README's test command: deps, tools, lint, unit, fuzzing,
# integration, critest, kubelet end to end, a cluster of crib nodes, the
# VM lane.
test: deps tools lint test-unit fuzz test-integration test-critest test-e2e test-cluster test-node

# guest is the VM lane's guest image (scripts/build-guest.sh, cached). It
# is not built beside the Kubernetes build: on the 2-core CI machine the
# two side by side took longer than one after the other (tests/README.md,
# Time of a CI run): mmdebstrap's dpkg and initramfs runs want the cores
# the compiler holds.
.PHONY: guest
guest:
	scripts/build-guest.sh >/dev/null

# bench runs the recorded benchmarks: tests/integration's TestBench*,
# critest -benchmark (tests/critest/bench.sh, parameters in
# tests/critest/benchmark.yaml), tests/e2e's TestBench* (static pod
# manifest to Running under kubelet), the cluster's (bench-cluster) and
# the VM lane's (bench-node). They report numbers; none asserts speed.
# CRIB_BENCH_OUT=file collects the Go benchmarks' reports (bench-node's is
# in its output).
# TestBenchVsContainerd runs the same CRI workload, and the e2e TestBench*
# the same static pods under a second kubelet, against containerd v2.4.2
# and runc, built by scripts/build-containerd.sh (cached in $(TOOLS_DIR);
# a few minutes the first time).
bench: build tools
	paths=$$(scripts/build-containerd.sh) && \
	CRIB_CONTAINERD_DIR=$$(dirname "$$(printf '%s\n' "$$paths" | head -n1)") && export CRIB_CONTAINERD_DIR && \
	$(GO) test -tags '$(GOTAGS) integration bench' -count=1 -run '^TestBench' -v -timeout 45m ./tests/integration/
	tests/critest/bench.sh
	paths=$$(scripts/build-containerd.sh) && \
	CRIB_CONTAINERD_DIR=$$(dirname "$$(printf '%s\n' "$$paths" | head -n1)") && export CRIB_CONTAINERD_DIR && \
	KUBELET=$$(scripts/build-kubelet.sh) && export KUBELET && $(GO) test -tags 'e2e bench' -count=1 -run '^TestBench' -v -timeout 20m ./tests/e2e/...
	$(MAKE) bench-cluster
	$(MAKE) bench-node

# bench-cluster is the cluster benchmark (tests/cluster/bench_test.go,
# build tags cluster and bench, so test-cluster does not run it): one
# control plane with three crib nodes and three containerd v2.4.2 +
# flanneld nodes; a 30-pod Deployment on each kind, apply to all Ready,
# alternating rounds (CRIB_BENCH_CLUSTER_ROUNDS, default 3, after a
# warm-up); PSS per node with 10 pods; one TCP stream pod to pod across
# nodes against the underlay. About 6 minutes of test on the 2-core
# machine (11 with 5 rounds under a load of 45).
.PHONY: bench-cluster
bench-cluster: build tools
	KUBE_DIR=$$(scripts/build-kube.sh) && export KUBE_DIR && \
	paths=$$(scripts/build-containerd.sh) && \
	CRIB_CONTAINERD_DIR=$$(dirname "$$(printf '%s\n' "$$paths" | head -n1)") && export CRIB_CONTAINERD_DIR && \
	FLANNELD=$$(scripts/build-flannel.sh) && export FLANNELD && \
	$(GO) test -tags 'cluster bench' -count=1 -run '^TestBenchCluster$$' -v -timeout 60m ./tests/cluster/...

# bench-node is the VM lane's benchmark (tests/node/bench_test.go, build
# tags node and bench): in the cgroup v2 + systemd guest, crib.service and
# containerd v2.4.2 side by side under the cgroupfs and then the systemd
# cgroup driver: pod ready, and ListContainerStats with 50 containers.
# Over 45 minutes under software emulation on a loaded 2-core machine (a
# first run hit suite.sh's 45-minute limit): it gets 90. Not part of make test.
bench-node: build tools guest
	tests/images/build.sh
	paths=$$(scripts/build-containerd.sh) && \
	CRIB_CONTAINERD_DIR=$$(dirname "$$(printf '%s\n' "$$paths" | head -n1)") && export CRIB_CONTAINERD_DIR && \
	CRIB_NODE_TIMEOUT=5400 GOTAGS='$(GOTAGS) bench' \
		tests/node/suite.sh -test.run '^TestBenchNode$$' -test.timeout 85m

# bench-base is the before-and-after benchmark: this tree's cribd against
# the cribd of revision BASE (default main), built in a temporary worktree,
# both running at once, pod lifecycles alternating (TestBenchVsBase): for a
# change that must cost nothing where it is not used. Not part of make bench.
BASE ?= main
bench-base: build tools
	dir=$$(mktemp -d /tmp/crib-base.XXXXXX) && \
	trap 'git worktree remove --force "$$dir/src"; rm -rf "$$dir"' EXIT && \
	git worktree add --detach "$$dir/src" '$(BASE)' && \
	$(MAKE) -C "$$dir/src" build BIN="$$dir/bin" && \
	CRIB_BENCH_BASE_BIN_DIR="$$dir/bin" $(GO) test -tags '$(GOTAGS) integration bench' -count=1 -run '^TestBenchVsBase$$' -v -timeout 30m ./tests/integration/

# critest-containerd runs critest's validation suite against containerd
# v2.4.2 on this machine (same registry): the reference run for which specs
# containerd passes here. Not part of make test (containerd's build).
critest-containerd: build tools
	paths=$$(scripts/build-containerd.sh) && \
	CRIB_CONTAINERD_DIR=$$(dirname "$$(printf '%s\n' "$$paths" | head -n1)") && export CRIB_CONTAINERD_DIR && \
	$(GO) test -tags '$(GOTAGS) integration bench' -count=1 -run '^TestCritestContainerd$$' -v -timeout 20m ./tests/integration/

clean:
	rm -rf $(BIN)
