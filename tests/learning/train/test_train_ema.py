"""EMA teacher: the decay schedule and the parameter update, by hand."""

import pytest
import torch

from pipeline.learning.train.ema import ema_decay, ema_update, make_teacher


def test_decay_schedule():
    # alpha_t = min(1 - 1/(t + 1), alpha)
    assert ema_decay(0, 0.99) == 0.0
    assert ema_decay(1, 0.99) == 0.5
    assert ema_decay(3, 0.99) == 0.75
    assert ema_decay(9, 0.99) == pytest.approx(0.9)
    assert ema_decay(99, 0.99) == pytest.approx(0.99)
    assert ema_decay(10_000, 0.99) == 0.99
    with pytest.raises(ValueError):
        ema_decay(-1, 0.99)


def test_update_by_hand():
    student = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        student.weight.fill_(2.0)
    teacher = make_teacher(student)
    assert not any(p.requires_grad for p in teacher.parameters())
    with torch.no_grad():
        teacher.weight.fill_(10.0)
        student.weight.fill_(4.0)
    ema_update(teacher, student, ema_decay(0, 0.99))  # decay 0: copy
    assert teacher.weight.item() == 4.0
    with torch.no_grad():
        student.weight.fill_(8.0)
    ema_update(teacher, student, ema_decay(3, 0.99))  # 0.75 * 4 + 0.25 * 8
    assert teacher.weight.item() == pytest.approx(5.0)
