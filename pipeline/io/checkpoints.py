"""Reading model checkpoints: one place for the path check, the load and the strict key check.

Every learned backend (DINO, CSC, SAM, SAM 2, the trained model) goes through these, so a wrong
or missing file gives the same kind of error everywhere: it names the file, the config key to
set, and every missing, unexpected or mis-shaped tensor. torch is imported on use.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from pipeline.errors import InputError

log = logging.getLogger(__name__)


def require_checkpoint(path: str | os.PathLike | None, what: str, config_key: str) -> Path:
    """The checkpoint path, or an error that says which config key to set and why."""
    if not path:
        raise InputError(None, f"{config_key} is not set: {what} weights cannot be downloaded by the pipeline; "
                               "give the path of a checkpoint file, or use a weight-free backend")
    path = Path(os.path.expanduser(str(path)))
    if not path.is_file():
        raise InputError(path, f"{what} checkpoint file is missing (set by {config_key})")
    return path


def read_torch_file(path: Path) -> Any:
    """``torch.load`` of a weights-only file, with an error naming the file when it is unreadable."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a corrupt or foreign file
        raise InputError(path, f"unreadable checkpoint ({type(exc).__name__}: {exc})") from None


def _listing(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return f"{len(keys)} [{shown}{' ...' if len(keys) > limit else ''}]"


def check_state_dict(model, state: dict, path: Path, what: str) -> None:
    """Raise InputError naming every missing, unexpected and mis-shaped key of ``state`` for ``model``."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mis_shaped = [
        f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}"
        for k in expected
        if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_listing(unexpected)}")
    if mis_shaped:
        problems.append(f"wrong shapes {_listing(mis_shaped, 4)}")
    if problems:
        raise InputError(path, f"{what} does not match the architecture: " + "; ".join(problems))


def load_checked_state_dict(model, state: dict, path: Path, what: str) -> None:
    """Check ``state`` against ``model`` (see :func:`check_state_dict`), then load it."""
    check_state_dict(model, state, path, what)
    model.load_state_dict(state, strict=True)
    log.info("loaded %d tensors from %s into %s", len(state), path, what)
