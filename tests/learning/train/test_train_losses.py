"""Each loss on a tiny case with a hand-computed value."""

import math

import pytest
import torch

from pipeline.learning.train import losses


def test_bce_and_dice():
    logits = torch.zeros(1, 2)
    targets = torch.tensor([[1.0, 0.0]])
    assert losses.mask_bce_loss(logits, targets).item() == pytest.approx(math.log(2))
    # p = (0.5, 0.5): dice = (2 * 0.5 + 1) / (1 + 1 + 1) = 2/3
    assert losses.dice_loss(logits, targets).item() == pytest.approx(1 / 3)
    assert losses.dice_loss(torch.tensor([[30.0, -30.0]]), targets).item() == pytest.approx(0.0, abs=1e-6)
    empty = torch.zeros(0, 2, requires_grad=True)
    assert losses.mask_bce_loss(empty, torch.zeros(0, 2)).item() == 0.0
    losses.dice_loss(empty, torch.zeros(0, 2)).backward()  # empty sets keep a graph


def test_classification_loss_weights_no_object():
    logits = torch.zeros(2, 3)  # 2 queries, classes {0, 1} + no-object: CE = log 3 for every query
    loss = losses.classification_loss(logits, torch.tensor([0]), torch.tensor([1]), no_object_weight=0.1)
    # (1 * log3 + 0.1 * log3) / (1 + 0.1)
    assert loss.item() == pytest.approx(math.log(3))
    logits = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, math.log(4)]])  # query 1: p(no object) = 4/6
    loss = losses.classification_loss(logits, torch.tensor([0]), torch.tensor([1]), no_object_weight=0.5)
    expected = (math.log(3) + 0.5 * -math.log(4 / 6)) / 1.5
    assert loss.item() == pytest.approx(expected)
    keep = torch.tensor([True, False])  # DropLoss: query 1 adds nothing
    loss = losses.classification_loss(logits, torch.tensor([0]), torch.tensor([1]), 0.5, keep)
    assert loss.item() == pytest.approx(math.log(3))


def test_query_consistency_is_mean_l1():
    student = torch.tensor([[1.0, 2.0], [0.0, 0.0]], requires_grad=True)
    teacher = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    loss = losses.query_consistency_loss(student, teacher)
    assert loss.item() == pytest.approx((1 + 2 + 1 + 1) / 4)
    loss.backward()
    assert teacher.grad is None and student.grad is not None


def test_masked_feature_consistency():
    features = torch.tensor([[1.0], [3.0]])  # two superpoints
    sizes = torch.tensor([1.0, 1.0])
    teacher_mask = torch.tensor([[1.0, 0.0]])  # teacher mean: 1
    student_mask = torch.tensor([[0.5, 0.5]])  # student mean: (0.5 * 1 + 0.5 * 3) / 1 = 2
    loss = losses.masked_feature_consistency_loss(features, features, student_mask, teacher_mask, sizes)
    assert loss.item() == pytest.approx(1.0)
    # Superpoints count by size: sizes (3, 1) give the student mean (1.5 * 1 + 0.5 * 3) / 2 = 1.5.
    loss = losses.masked_feature_consistency_loss(features, features, student_mask, teacher_mask, torch.tensor([3.0, 1.0]))
    assert loss.item() == pytest.approx(0.5)


def test_masked_feature_consistency_paper_form_sums_squared_l2_over_boxes():
    features = torch.tensor([[1.0, 0.0], [3.0, 2.0]])  # two superpoints, two channels
    sizes = torch.tensor([1.0, 1.0])
    teacher_masks = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # means (1, 0) and (3, 2)
    student_masks = torch.tensor([[0.5, 0.5], [0.0, 1.0]])  # means (2, 1) and (3, 2)
    paper = losses.masked_feature_consistency_loss(features, features, student_masks, teacher_masks, sizes, "paper")
    assert paper.item() == pytest.approx((1 ** 2 + 1 ** 2) + 0.0)  # box 1: ||(1, 1)||^2, box 2: 0
    mean_abs = losses.masked_feature_consistency_loss(features, features, student_masks, teacher_masks, sizes, "mean_abs")
    assert mean_abs.item() == pytest.approx((1 + 1 + 0 + 0) / 4)
    with pytest.raises(ValueError, match="form"):
        losses.masked_feature_consistency_loss(features, features, student_masks, teacher_masks, sizes, "l1")


def test_paper_feature_form_uses_backbone_features_and_is_validated():
    from pipeline.learning.train.config import resolve

    paper = resolve({"mode": "box", "preset": "paper"})
    assert paper.loss.feature_form == "paper"
    assert (paper.box.centre_similarity, paper.box.centre_temperature, paper.box.queries) == ("dot", 1.0, "fps")
    with pytest.raises(ValueError, match="feature_form"):
        resolve({"mode": "box", "loss": {"feature_form": "cosine"}})


def test_area_and_contrastive():
    assert losses.area_loss(torch.zeros(3, 4)).item() == pytest.approx(0.5)
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    labels = torch.tensor([0, 1, -1])  # the third superpoint is in no mask
    # Mask means are e1 and e2: logits (1/t, 0) and (0, 1/t) -> CE = log(1 + exp(-1/t)).
    loss = losses.point_contrastive_loss(features, labels, temperature=0.5)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-2)))
    swapped = losses.point_contrastive_loss(torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]),
                                            torch.tensor([0, 1, 0, 1]), 0.5)
    assert swapped.item() > loss.item()  # mixed masks cost more
    assert losses.point_contrastive_loss(features, torch.tensor([0, 0, -1]), 0.5).item() == 0.0


def test_mask_iou_and_drop_loss():
    sizes = torch.tensor([1.0, 1.0, 2.0, 1.0])
    pred_logits = torch.tensor([
        [5.0, 5.0, -5.0, -5.0],  # {0, 1}: IoU with target {1, 2} = 1 / 4 (superpoint 2 has 2 points)
        [-5.0, -5.0, -5.0, 5.0],  # {3}: overlaps no target
        [-5.0, -5.0, -5.0, -5.0],  # empty
    ])
    targets = torch.tensor([[0.0, 1.0, 1.0, 0.0]])
    iou = losses.mask_iou(pred_logits > 0, targets > 0.5, sizes)
    assert iou[:, 0].tolist() == pytest.approx([0.25, 0.0, 0.0])
    assert losses.drop_loss_keep(pred_logits, targets, sizes, 0.2).tolist() == [True, False, False]
    assert losses.drop_loss_keep(pred_logits, targets, sizes, 0.3).tolist() == [False, False, False]
    # Matched queries always count.
    assert losses.drop_loss_keep(pred_logits, targets, sizes, 0.3, torch.tensor([2])).tolist() == [False, False, True]
    assert losses.drop_loss_keep(pred_logits, targets[:0], sizes, 0.3).tolist() == [False, False, False]
