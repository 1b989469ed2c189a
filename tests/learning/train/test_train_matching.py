"""Hungarian matching and its cost terms."""

import numpy as np
import torch

from pipeline.learning.train import losses
from pipeline.learning.train.matching import MatchWeights, bce_cost, dice_cost, hungarian, match


def test_costs_equal_the_pairwise_losses():
    torch.manual_seed(0)
    logits, targets = torch.randn(3, 7), torch.rand(2, 7)
    bce, dice = bce_cost(logits, targets), dice_cost(logits, targets)
    for q in range(3):
        for k in range(2):
            assert torch.isclose(bce[q, k], losses.mask_bce_loss(logits[q:q + 1], targets[k:k + 1]), atol=1e-6)
            assert torch.isclose(dice[q, k], losses.dice_loss(logits[q:q + 1], targets[k:k + 1]), atol=1e-6)


def test_hungarian_by_hand():
    cost = np.array([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]])
    m = hungarian(cost)  # optimum: (0,1) (1,0) (2,2) = 1 + 2 + 2
    assert m.target.tolist() == [0, 1, 2] and m.query.tolist() == [1, 0, 2]
    wide = hungarian(np.array([[1.0, 0.0, 5.0]]))  # one query, three targets: only one pair
    assert wide.query.tolist() == [0] and wide.target.tolist() == [1]
    assert wide.query_of_target(3).tolist() == [-1, 0, -1]
    assert len(hungarian(np.zeros((0, 3))).query) == 0


def test_match_pairs_each_target_with_its_lookalike():
    targets = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    logits = torch.tensor([[-9.0, -9.0, 9.0, 9.0], [0.0, 0.0, 0.0, 0.0], [9.0, 9.0, -9.0, -9.0]])
    m = match(logits, torch.zeros(3, 2), targets, torch.zeros(2, dtype=torch.long), MatchWeights())
    assert m.query_of_target(2).tolist() == [2, 0]
