#!/bin/sh
# Runs the sync engine benchmarks optimised; extra arguments go to Google Benchmark (e.g. --benchmark_filter=Apply).
cd "$(dirname "$0")/.." && exec bazel run -c opt //syncservice/engine:scope_benchmark -- "$@"
