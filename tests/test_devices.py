import torch

from pipeline.devices import resolve_device


def test_resolve_device_is_one_rule_returning_torch_devices():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    for auto in ("auto", None, ""):
        assert resolve_device(auto) == torch.device(expected)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)  # a name is used as given, GPU or not
    device = torch.device("cpu")
    assert resolve_device(device) is device
