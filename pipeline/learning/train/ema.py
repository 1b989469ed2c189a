"""Exponential moving average (mean teacher): the teacher follows the student.

After student step t (t = 0, 1, ...): theta_T <- a_t theta_T + (1 - a_t) theta_S with
a_t = min(1 - 1/(t + 1), alpha) (BEEP3D), so the teacher equals the student after the first step
and averages over roughly 1/(1 - alpha) steps later on. Buffers (BatchNorm statistics) are copied.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_decay(step: int, alpha: float) -> float:
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return min(1.0 - 1.0 / (step + 1), alpha)


def make_teacher(student: nn.Module) -> nn.Module:
    teacher = copy.deepcopy(student)
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher.eval()


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, decay: float) -> None:
    student_params = dict(student.named_parameters())
    for name, parameter in teacher.named_parameters():
        parameter.mul_(decay).add_(student_params[name].detach(), alpha=1.0 - decay)
    student_buffers = dict(student.named_buffers())
    for name, buffer in teacher.named_buffers():
        buffer.copy_(student_buffers[name])
