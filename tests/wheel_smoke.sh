#!/usr/bin/env bash
# Smoke test of an installed wheel (run by `make wheel-check` from a temporary folder, outside the
# source tree): the console script works end to end without Lava and without the repository.
set -euo pipefail
bin=$1
where=$("$bin/python" -c 'import eventprop_pipeline, netx_export; print(eventprop_pipeline.__file__)')
case "$where" in "$(dirname "$bin")"/*) ;; *) echo "wheel-check: package imported from $where, not the wheel" >&2; exit 1;; esac
"$bin/eventprop" --help >/dev/null
"$bin/eventprop" train --config smoke --epochs 1 --out run >/dev/null
"$bin/eventprop" export run/best.npz --out run/net.net >/dev/null
"$bin/eventprop" evaluate run/net.net --backend emulator --limit 20 --json > eval.json
"$bin/python" -c 'import json; d = json.load(open("eval.json")); assert d["n"] == 20, d'
echo "wheel-check: the wheel installs and runs train, export and evaluate from $(dirname "$bin")"
