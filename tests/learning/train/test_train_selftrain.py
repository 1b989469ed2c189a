"""UnScene3D pieces: label fractions, merging mask sources, mask addition, NMS, DropLoss."""

import numpy as np
import pytest
import torch

from pipeline.learning.model.decoder import LayerOutput
from pipeline.learning.model.net import NetOutput, SceneTensors
from pipeline.learning.train.beep3d import LossWeights
from pipeline.learning.train.matching import MatchWeights
from pipeline.learning.train.selftrain import (
    SelfTrainConfig,
    confident_novel_masks,
    label_fractions,
    mask_nms,
    merge_mask_sources,
    unsupervised_losses,
)

SIZES = np.array([1.0, 1.0, 1.0, 1.0])


def test_label_fractions():
    labels = np.array([0, 0, 1, -1, 1])
    point_superpoint = np.array([0, 0, 1, 1, 2])
    fractions = label_fractions(labels, point_superpoint, np.array([2.0, 2.0, 1.0]))
    np.testing.assert_allclose(fractions, [[1.0, 0.0, 0.0], [0.0, 0.5, 1.0]])


def test_merge_sources_drops_duplicates_and_empty_masks():
    first = np.array([[1.0, 1.0, 0.0, 0.0]])
    second = np.array([[1.0, 1.0, 1.0, 0.0],  # IoU 2/3 with the first mask: a duplicate at 0.5
                       [0.0, 0.0, 0.0, 1.0],
                       [0.2, 0.0, 0.0, 0.0]])  # empty once binarised
    merged = merge_mask_sources([first, second], SIZES, duplicate_iou=0.5)
    np.testing.assert_array_equal(merged, [[1, 1, 0, 0], [0, 0, 0, 1]])
    assert merge_mask_sources([first, second], SIZES, duplicate_iou=0.7).shape == (3, 4)
    assert merge_mask_sources([], SIZES, 0.5).shape == (0, 4)


def test_mask_addition_keeps_confident_new_masks():
    existing = np.array([[1.0, 1.0, 0.0, 0.0]])
    predicted = np.array([[1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 1]], bool)
    scores = np.array([0.9, 0.8, 0.3])
    config = SelfTrainConfig(tau_conf=0.5, novel_iou=0.5)
    added = confident_novel_masks(predicted, scores, existing, SIZES, config)
    np.testing.assert_array_equal(added, [[0, 0, 1, 1]])  # the first is known, the third not confident
    assert confident_novel_masks(predicted, scores, existing[:0], SIZES, config).shape == (2, 4)


def test_a_mask_spanning_existing_ones_is_not_novel():
    from pipeline.learning.train.selftrain import is_novel

    sizes = np.ones(6)
    existing = np.array([[1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0]], float)
    predicted = np.array([[1, 1, 1, 1, 0, 0],  # IoU 1/4 with each, but 3/4 of it is covered already
                          [0, 0, 0, 1, 1, 1],  # new ground
                          [0, 0, 1, 1, 1, 0]], bool)  # IoU 1/3, a third covered: new
    assert is_novel(predicted, existing, sizes, 0.5).tolist() == [False, True, True]
    assert is_novel(predicted, existing[:0], sizes, 0.5).tolist() == [True, True, True]


def test_mask_nms():
    masks = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 1]], bool)
    assert mask_nms(masks, np.array([0.5, 0.9, 0.4]), SIZES, 0.5).tolist() == [1, 2]
    assert mask_nms(masks[:0], np.zeros(0), SIZES, 0.5).tolist() == []


def _output(mask_logits, class_logits):
    layer = LayerOutput(torch.zeros(len(mask_logits), 2), torch.zeros(len(mask_logits), 3), mask_logits, class_logits)
    return NetOutput([layer], torch.zeros(mask_logits.shape[1], 2))


def _scene(sizes):
    s = len(sizes)
    return SceneTensors(torch.zeros(1, 6), torch.zeros(1, 3, dtype=torch.int32), [1, 1, 1], torch.zeros(1, dtype=torch.long),
                        torch.zeros(1, dtype=torch.long), s, torch.tensor(sizes), torch.zeros(s, 3), np.zeros((s, 3)))


def test_drop_loss_spares_predictions_that_overlap_no_pseudo_mask():
    targets = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    mask_logits = torch.tensor([[9.0, 9.0, -9.0, -9.0],  # matched to the target
                                [-9.0, -9.0, 9.0, 9.0]])  # a possible object the pseudo-labels missed
    class_logits = torch.tensor([[0.0, 0.0], [5.0, 0.0]])  # the second says "object" confidently
    scene = _scene([1.0, 1.0, 1.0, 1.0])
    weights = LossWeights(bce=0.0, dice=0.0, cls=1.0)
    dropped = unsupervised_losses(_output(mask_logits, class_logits), targets, scene, weights, MatchWeights(),
                                  SelfTrainConfig(tau_drop=0.01))
    kept = unsupervised_losses(_output(mask_logits, class_logits), targets, scene, weights, MatchWeights(),
                               SelfTrainConfig(tau_drop=0.0))  # every prediction counts
    # With DropLoss only the matched query's CE counts: log(2).
    assert dropped["cls"].item() == pytest.approx(np.log(2))
    assert kept["cls"].item() > dropped["cls"].item()
