#!/usr/bin/env bash
# One GPU benchmark suite (issue 11): see benchmarks/gpu_suite.py for what it
# measures. Writes gpu_results.md and gpu_results.json into --out.
#
#   bash benchmarks/gpu_suite.sh --out results/         # one GPU, <= 8 minutes
#   bash benchmarks/gpu_suite.sh --quick --out /tmp/q   # the CPU check (tests run it)
#
# Extra arguments go to gpu_suite.py (--sections tests encoder data train cached
# ddp compile; tests and compile run only when named; --tmp DIR for the
# temporary dataset: about 6 GiB at full size). On a GPU machine's next
# visit, the CUDA tests and what is still unmeasured (issue 11):
#
#   bash benchmarks/gpu_suite.sh --out results/ --tmp /tmp --sections tests encoder data train --tests-timeout 180
#
# benchmarks/gpu_carry.sh prepares what a machine without network needs.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PYTHONUNBUFFERED=1
export PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
fi
# A process that dies (a compiler's crash, a signal), leaves the GPU broken
# (exit status 3) or stops a section that ran past --section-timeout (exit
# status 4) would take the sections after it along: the sections left run
# in a new process, which keeps the results written so far (--resume).
# Not after 0 (done), 1 (some section failed), 2 (bad arguments), 130 and 143
# (stopped on purpose: SIGINT, SIGTERM).
status=0
"${PYTHON:-python3}" "$here/gpu_suite.py" "$@" || status=$?
for _ in 1 2 3 4 5 6 7 8; do
    case "$status" in 0 | 1 | 2 | 130 | 143) break ;; esac
    echo "gpu_suite.py ended with exit status $status: going on in a new process" >&2
    resumed=$status
    status=0
    "${PYTHON:-python3}" "$here/gpu_suite.py" "$@" --resume "$resumed" || status=$?
done
exit "$status"
