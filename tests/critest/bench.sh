#!/usr/bin/env bash
# bench.sh runs `critest -benchmark` (cri-tools v1.36.0) with the parameters
# in benchmark.yaml against a cribd that run.sh starts (same throwaway
# directories, bridge network and loopback registry), then prints p50 and
# p99 of every operation critest timed. It reports; it asserts nothing about
# speed (critest's own pass/fail is kept: a failed sample fails the run).
#
# Usage: tests/critest/bench.sh      (as root; `make bench` runs it)
# Env:   as run.sh; CRIB_BENCH_OUT, if set, is a file the summary is
#        appended to.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=$(mktemp -d /tmp/crib-ctbench.XXXXXX)
trap 'rm -rf "$out"' EXIT

log() { printf 'critest/bench.sh: %s\n' "$*" >&2; }

# critest -benchmark adds "benchmark" to the focus; run.sh's default focus
# (".") would add every other spec back, and its default skip drops the
# benchmarks.
CRIB_CRITEST_FOCUS=benchmark CRIB_CRITEST_SKIP='should support attach' CRIB_CRITEST_REPORT="$out/report.json" \
	"$here/run.sh" -benchmark \
	-benchmarking-params-file "$here/benchmark.yaml" \
	-benchmarking-output-dir "$out"

# Each *_benchmark_data.json holds, per sample, the duration in ns of each
# operation named in operationsNames.
summary() {
	local f
	for f in "$out"/*_data.json; do
		[[ -e $f ]] || continue
		jq -r --arg file "$(basename "$f" _data.json)" '
			def pct(p): sort | .[((p * length + 99) / 100 | floor) - 1];
			def ms: . / 1e6 | (. * 10 | round) / 10 | tostring + " ms";
			. as $set
			| [$set.datapoints[].operationsDurationsNs] as $rows
			| range(0; $set.operationsNames | length) as $i
			| [$rows[][$i]] as $d
			| "\($file) \($set.operationsNames[$i]) (n=\($d | length)): p50 \($d | pct(50) | ms)  p99 \($d | pct(99) | ms)"' "$f"
	done
	# "start a container from scratch" is one gmeasure experiment in the
	# Ginkgo report, not a data file.
	if [[ -s $out/report.json ]]; then
		jq -r '.[].SpecReports[]?.ReportEntries[]? | select(.Name == "start-container-benchmark")
			| .Value.AsJSON | fromjson | .Measurements[]? | select(.Durations != null)
			| "start-container \(.Name) (n=\(.Durations | length)): \(.Durations | map(. / 1e6 | (. * 10 | round) / 10 | tostring + " ms") | join(", "))"' "$out/report.json"
	fi
}

report=$(summary)
if [[ -z $report ]]; then
	log "critest wrote no benchmark data"
	exit 1
fi
printf 'critest -benchmark (tests/critest/benchmark.yaml):\n%s\n' "$report"
if [[ -n ${CRIB_BENCH_OUT:-} ]]; then
	printf 'critest -benchmark (tests/critest/benchmark.yaml):\n%s\n' "$report" >>"$CRIB_BENCH_OUT"
fi
