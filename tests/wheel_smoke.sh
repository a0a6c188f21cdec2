#!/usr/bin/env bash
# Smoke test of an installed wheel (run by `make wheel-check` from a temporary folder, outside the
# source tree): the console script works end to end without Lava and without the repository.
set -euo pipefail
bin=$1
where=$("$bin/python" -c 'import eventprop_pipeline, netx_export; print(eventprop_pipeline.__file__)')
case "$where" in "$(dirname "$bin")"/*) ;; *) echo "wheel-check: package imported from $where, not the wheel" >&2; exit 1;; esac
"$bin/eventprop" --help >/dev/null
"$bin/eventprop" pipeline --config smoke --no-lava --sweep-bits 8 --out run > pipeline.log
test -s run/network.net && test -s run/report.md && test -s run/model.npz
echo "wheel-check: the wheel installs and runs the pipeline (train, export, evaluate, report) from $(dirname "$bin")"
