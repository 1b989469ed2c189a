"""Shared fixtures: paths to ../shared/data (skipped with a reason when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def redkitchen_dir() -> Path:
    path = SHARED_DATA / "redkitchen"
    if not path.is_dir():
        pytest.skip(f"real reference data not found at {path} (only present beside the repo in CI)")
    return path


@pytest.fixture(scope="session")
def scene0000_dir() -> Path:
    path = SHARED_DATA / "scene0000_00"
    if not path.is_dir():
        pytest.skip(f"real labelled scan not found at {path} (only present beside the repo in CI)")
    return path
