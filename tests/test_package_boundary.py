"""Dependencies point one way: eventprop_core <- netx_export <- eventprop_pipeline. Deployment code
(and Lava's environment, which has no torch) never needs torch or the training package."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"eventprop_core": ("torch", "eventprop_pipeline", "netx_export", "numba"),
             "netx_export": ("torch", "eventprop_pipeline")}


def imported_modules(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_against_the_direction_anywhere_in_the_source(package):
    """Also imports inside functions: hiding one there would only move the cycle."""
    bad = [f"{path.relative_to(ROOT)}: import {name}" for path in sorted((ROOT / package).rglob("*.py"))
           for name in imported_modules(path) if name.split(".")[0] in FORBIDDEN[package]]
    assert bad == []


def test_deployment_modules_import_without_torch_or_training_code():
    code = ("import sys, netx_export, netx_export.hdf5_io, netx_export.emulator, netx_export.quantize, "
            "netx_export.lava_runner, netx_export.limits, eventprop_core; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'eventprop_pipeline')); "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
