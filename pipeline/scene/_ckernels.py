"""The C superpoint kernels (``segmentator.c``), compiled on first use and loaded with ctypes.

Why: ``python -m pipeline superpoints`` should start about as fast as ScanNet's C++ Segmentator.
The numba kernels cost about 0.6 s of CPU time per process before the first edge is weighed
(importing numba, setting up its type context, which imports scipy.linalg), several times the
segmentation itself. The same kernels in C need only numpy.

The library is built once per source version, compiler and platform with the system C compiler
(``$CC``, else ``cc``, ``gcc`` or ``clang``) into ``$SCAN_PSEUDOLABELS_CACHE`` (default
``~/.cache/scan-pseudolabels``; the temporary folder when that is not writable), written under a
temporary name and renamed, so concurrent jobs are safe. Without a compiler, or when the build
fails, ``library()`` returns None and the numba kernels are used (logged once at debug level).
``SCAN_PSEUDOLABELS_KERNELS=numba`` forces the numba kernels (tests compare the two).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pipeline.io.atomic import atomic_path

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("segmentator.c")
FLAGS = ["-O2", "-std=c99", "-shared", "-fPIC", "-ffp-contract=off", "-fno-fast-math"]

_NOT_LOADED = object()
_library = _NOT_LOADED


def _compiler() -> str | None:
    for name in filter(None, [os.environ.get("CC"), "cc", "gcc", "clang"]):
        path = shutil.which(name)
        if path:
            return path
    return None


def _cache_dirs() -> list[Path]:
    configured = os.environ.get("SCAN_PSEUDOLABELS_CACHE")
    if configured:
        return [Path(configured)]
    folders = []
    try:
        folders.append(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "scan-pseudolabels")
    except (KeyError, RuntimeError):  # no home folder
        pass
    user = os.getuid() if hasattr(os, "getuid") else "user"
    return [*folders, Path(tempfile.gettempdir()) / f"scan-pseudolabels-{user}"]


class _CompileError(Exception):
    """The compiler refused the source (the temporary output is then removed)."""


def _build(compiler: str) -> Path | None:
    source = SOURCE.read_bytes()
    tag = hashlib.sha256(source + " ".join([compiler, *FLAGS, platform.machine(), sys.platform]).encode()).hexdigest()[:16]
    name = f"segmentator-{tag}.so"
    for folder in _cache_dirs():
        target = folder / name
        if target.is_file():
            return target
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if not os.access(folder, os.W_OK | os.X_OK):
            continue  # not writable: try the next folder
        try:
            with atomic_path(target) as tmp:
                run = subprocess.run([compiler, *FLAGS, "-o", str(tmp), str(SOURCE), "-lm"], capture_output=True,
                                     text=True, timeout=120)
                if run.returncode != 0:
                    raise _CompileError(run.stderr.strip()[-2000:])
            return target
        except _CompileError as exc:
            log.debug("building %s with %s failed: %s", SOURCE.name, compiler, exc)
            return None
        except (OSError, subprocess.SubprocessError) as exc:
            log.debug("building %s failed: %s", SOURCE.name, exc)
            return None
    return None


def _load() -> ctypes.CDLL | None:
    if os.environ.get("SCAN_PSEUDOLABELS_KERNELS", "").lower() == "numba":
        return None
    compiler = _compiler()
    if compiler is None:
        log.debug("no C compiler found: superpoints use the numba kernels")
        return None
    path = _build(compiler)
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as exc:
        log.debug("loading %s failed (%s): superpoints use the numba kernels", path, exc)
        return None
    p, i64, f32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float
    lib.running_mean_face_normals.argtypes = [p, i64, p, i64, p]
    lib.running_mean_face_normals.restype = None
    lib.normal_change_weights.argtypes = [p, p, p, i64, p]
    lib.normal_change_weights.restype = None
    lib.heap_sort_range.argtypes = [p, p, i64, i64]
    lib.heap_sort_range.restype = None
    lib.introsort.argtypes = [p, p, i64]
    lib.introsort.restype = ctypes.c_int
    lib.felzenszwalb.argtypes = [p, p, p, p, i64, f32, i64, p]
    lib.felzenszwalb.restype = ctypes.c_int
    return lib


def library() -> ctypes.CDLL | None:
    """The loaded C kernels, or None (use the numba kernels). Built and loaded once per process."""
    global _library
    if _library is _NOT_LOADED:
        _library = _load()
    return _library
