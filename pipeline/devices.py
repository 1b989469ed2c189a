"""The torch device a stage runs on: one rule for every stage's ``device`` setting."""

from __future__ import annotations


def resolve_device(device=None):
    """``auto`` (or None, "") -> cuda when a GPU is visible, else cpu; a ``torch.device`` or a name
    such as ``cuda:1`` is used as given. Returns a ``torch.device``."""
    import torch  # here, not at the top: light modules import this one

    if isinstance(device, torch.device):
        return device
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
