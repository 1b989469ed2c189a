"""Compare the arrays of every HDF5 artifact in two results folders (for determinism and cluster tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.io.artifacts import FORMAT_VERSIONS, read_artifact


def artifact_files(results: Path) -> list[Path]:
    return sorted(p.relative_to(results) for p in Path(results).rglob("*.h5"))


def assert_same_artifacts(results_a: Path, results_b: Path) -> int:
    """Every artifact in ``results_a`` exists in ``results_b`` with identical arrays; returns the count."""
    files = artifact_files(results_a)
    assert files, f"no artifacts under {results_a}"
    assert files == artifact_files(results_b)
    for relative in files:
        stage = relative.stem
        if stage not in FORMAT_VERSIONS:
            continue
        a = read_artifact(Path(results_a) / relative, stage)
        b = read_artifact(Path(results_b) / relative, stage)
        assert sorted(a.data) == sorted(b.data), relative
        for name in a.data:
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{relative}:{name}")
        assert a.params == b.params, relative
    return len(files)
