"""One checkpoint reader for every learned backend: errors name the file, the key and the tensors."""

import pytest
import torch

from pipeline.io.checkpoints import check_state_dict, load_checked_state_dict, read_torch_file, require_checkpoint
from pipeline.errors import InputError


def test_missing_path_names_the_config_key_and_missing_file_the_file(tmp_path):
    with pytest.raises(InputError, match="stage.model.checkpoint is not set"):
        require_checkpoint("", "Model", "stage.model.checkpoint")
    with pytest.raises(InputError, match="Model checkpoint file is missing") as err:
        require_checkpoint(tmp_path / "no.pt", "Model", "stage.model.checkpoint")
    assert str(tmp_path / "no.pt") in str(err.value)


def test_unreadable_file_is_an_input_error(tmp_path):
    path = tmp_path / "broken.pt"
    path.write_bytes(b"not a zip archive")
    with pytest.raises(InputError, match="unreadable checkpoint"):
        read_torch_file(path)


def test_every_kind_of_mismatch_is_listed_and_nothing_is_loaded(tmp_path):
    model = torch.nn.Linear(3, 2)
    state = {"weight": torch.zeros(2, 4), "extra": torch.zeros(1)}  # wrong shape, unexpected, bias missing
    with pytest.raises(InputError) as err:
        check_state_dict(model, state, tmp_path / "m.pt", "test checkpoint")
    message = str(err.value)
    assert "missing keys 1 [bias]" in message and "unexpected keys 1 [extra]" in message
    assert "wrong shapes 1 [weight (2, 4) != (2, 3)]" in message
    before = model.weight.detach().clone()
    with pytest.raises(InputError):
        load_checked_state_dict(model, state, tmp_path / "m.pt", "test checkpoint")
    assert torch.equal(model.weight, before)


def test_matching_state_round_trips(tmp_path):
    source, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    path = tmp_path / "m.pt"
    torch.save(source.state_dict(), path)
    load_checked_state_dict(target, read_torch_file(require_checkpoint(path, "Model", "k")), path, "test")
    assert torch.equal(target.weight, source.weight) and torch.equal(target.bias, source.bias)
