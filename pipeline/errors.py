"""Errors that name the offending file, so a user knows what to fix."""

from __future__ import annotations

import os


class InputError(ValueError):
    """Bad user input: a missing, unreadable or malformed file or folder."""

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class ArtifactError(InputError):
    """An artifact (HDF5 file between stages) is missing, stale or malformed."""
