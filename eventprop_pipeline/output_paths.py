"""No command overwrites its own input: every output path is checked against the inputs and the
other outputs before any work (docs/reliability.md).

Paths are compared after resolving symbolic links (os.path.realpath) and, when both exist, by
inode (os.path.samefile, which also catches hard links). Inputs that are folders are passed
with the files they hold (an mlGeNN checkpoint's *-g.npy files, a data set's split files), so an
output over any of them is refused; so is an input inside a run folder the command writes into.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from eventprop_core.errors import ConfigError

PathLike = str | os.PathLike


def _real(path: PathLike) -> Path:
    return Path(os.path.realpath(os.path.expanduser(os.fspath(path))))


def same_file(a: PathLike, b: PathLike) -> bool:
    if _real(a) == _real(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:           # one of them does not exist (yet)
        return False


def _inside(path: PathLike, folder: PathLike) -> bool:
    p, f = _real(path), _real(folder)
    return p != f and f in p.parents


def _entries(mapping: Mapping[str, PathLike | Iterable[PathLike] | None]):
    for label, value in mapping.items():
        if value is None:
            continue
        values = [value] if isinstance(value, (str, os.PathLike)) else list(value)
        for v in values:
            yield label, v


def check_outputs(inputs: Mapping[str, PathLike | Iterable[PathLike] | None],
                  outputs: Mapping[str, PathLike | None],
                  run_dirs: Mapping[str, PathLike | None] | None = None) -> None:
    """Raise ConfigError if an output is an input or equals another output, or if an input lies
    inside an output run folder.

    inputs: label -> file or folder (or a list of them), e.g. {"model": "m.npz", "mlGeNN folder": DIR}.
    outputs: label -> output file, e.g. {"--out": "x.net", "--report": "x.json"}.
    run_dirs: label -> run folder the command writes into (inputs must not lie inside it).
    """
    ins = list(_entries(inputs))
    outs = list(_entries(outputs))
    for o_label, out in outs:
        if Path(out).is_dir():
            raise ConfigError(f"{o_label} {out}: is a directory; give a file path")
        for i_label, inp in ins:
            if same_file(out, inp):
                raise ConfigError(f"{o_label} {out}: is the input {i_label} {inp}; writing it would destroy "
                                  f"the input. Choose another output path")
    for n, (a_label, a) in enumerate(outs):
        for b_label, b in outs[n + 1:]:
            if same_file(a, b):
                raise ConfigError(f"{a_label} {a} and {b_label} {b} are the same file; give them different paths")
    for d_label, run_dir in _entries(run_dirs or {}):
        for i_label, inp in ins:
            if same_file(run_dir, inp) or _inside(inp, run_dir):
                raise ConfigError(f"{i_label} {inp}: lies inside the run folder {d_label} {run_dir} that this "
                                  f"command writes into; copy it elsewhere or choose another run folder")
        for o_label, out in outs:
            if same_file(run_dir, out):
                raise ConfigError(f"{o_label} {out} and {d_label} {run_dir} are the same path")


def data_input_paths(dataset: str | None, data_root: PathLike | None) -> list[Path]:
    """The spike files a data set option may read (SHD/SSC splits), for check_outputs."""
    from .data.spike_files import SPEC, default_data_root, spike_file_path

    if not dataset or dataset.lower() not in SPEC:
        return []
    name = dataset.lower()
    root = Path(data_root) if data_root else default_data_root()
    return [spike_file_path(name, split, root) for split in SPEC[name][2]]


def mlgenn_input_paths(folder: PathLike | None) -> list[Path]:
    """An mlGeNN checkpoint folder and every weight file in it."""
    if folder is None:
        return []
    folder = Path(folder)
    return [folder, *sorted(folder.glob("*-g.npy"))] if folder.is_dir() else [folder]
