"""CSC converter: a MinkowskiEngine-layout Res16UNet, converted, computes through spconv what the
numpy reference of MinkowskiEngine's semantics computes, layer by layer; bad files are named."""

import re

import numpy as np
import pytest
import torch

from pipeline.cli import main
from pipeline.errors import InputError
from pipeline.unscene3d.features import minkowski_reference as me
from pipeline.unscene3d.features.csc import Res16UNet, Res16UNetArch, csc_point_features, load_csc_checkpoint, single_cpu_thread
from pipeline.unscene3d.features.csc_convert import convert_checkpoint_content, convert_csc_checkpoint, convert_state_dict, infer_arch

# Float32 spconv against the float64 reference: per layer, max |spconv - reference| must stay below
# TOLERANCE * (1 + max |reference|) (measured on these scenes: below 1e-7, float32 rounding).
TOLERANCE = 1e-5


def minkowski_res16unet_state(in_channels, out_channels, init_dim, planes, layers, conv1_kernel_size=3, seed=0,
                              dtype=torch.float32, device="cpu"):
    """A random state dict with the names and layouts of CSC's MinkowskiEngine Res16UNetBase
    (written from its network_initialization, independently of the converter)."""
    gen = torch.Generator().manual_seed(seed)
    meta = device == "meta"

    def rand(*shape, low=-1.0, high=1.0):
        if meta:
            return torch.empty(shape, dtype=dtype, device="meta")
        return torch.rand(shape, generator=gen, dtype=dtype) * (high - low) + low

    state = {}

    def conv(name, volume, cin, cout, bias=False):
        shape = (cin, cout) if volume == 1 else (volume, cin, cout)
        state[f"{name}.kernel"] = rand(*shape) / np.sqrt(cin * volume)
        if bias:
            state[f"{name}.bias"] = rand(1, cout)

    def bn(name, c):  # MinkowskiBatchNorm wraps torch's BatchNorm1d as `.bn`
        state[f"{name}.bn.weight"] = rand(c, low=0.5, high=1.5)
        state[f"{name}.bn.bias"] = rand(c, low=-0.2, high=0.2)
        state[f"{name}.bn.running_mean"] = rand(c, low=-0.2, high=0.2)
        state[f"{name}.bn.running_var"] = rand(c, low=0.5, high=1.5)
        state[f"{name}.bn.num_batches_tracked"] = torch.tensor(1000, device=device)

    def make_layer(name, inplanes, planes_, blocks):  # ResNetBase._make_layer with BasicBlock, stride 1
        for j in range(blocks):
            width = inplanes if j == 0 else planes_
            conv(f"{name}.{j}.conv1", 27, width, planes_)
            bn(f"{name}.{j}.norm1", planes_)
            conv(f"{name}.{j}.conv2", 27, planes_, planes_)
            bn(f"{name}.{j}.norm2", planes_)
            if j == 0 and inplanes != planes_:
                conv(f"{name}.{j}.downsample.0", 1, inplanes, planes_)
                bn(f"{name}.{j}.downsample.1", planes_)
        return planes_

    inplanes = init_dim
    conv("conv0p1s1", conv1_kernel_size ** 3, in_channels, inplanes)
    bn("bn0", inplanes)
    for i, (name, tensor_stride) in enumerate([("conv1p1s2", 1), ("conv2p2s2", 2), ("conv3p4s2", 4), ("conv4p8s2", 8)]):
        conv(name, 8, inplanes, inplanes)
        bn(f"bn{i + 1}", inplanes)
        inplanes = make_layer(f"block{i + 1}", inplanes, planes[i], layers[i])
    skips = [planes[2], planes[1], planes[0], init_dim]
    for i, name in enumerate(["convtr4p16s2", "convtr5p8s2", "convtr6p4s2", "convtr7p2s2"]):
        conv(name, 8, inplanes, planes[4 + i])
        bn(f"bntr{4 + i}", planes[4 + i])
        inplanes = planes[4 + i] + skips[i]
        inplanes = make_layer(f"block{5 + i}", inplanes, planes[4 + i], layers[4 + i])
    conv("final", 1, planes[7], out_channels, bias=True)
    return state


SMALL = dict(in_channels=3, out_channels=5, init_dim=4, planes=[4, 8, 8, 12, 8, 8, 6, 6], layers=[1, 2, 1, 1, 1, 1, 1, 2])


def small_voxels(seed=0, n=500):
    """Voxel coordinates of a small scene on MinkowskiEngine's absolute grid (some negative)."""
    rng = np.random.default_rng(seed)
    coords = np.unique(rng.integers(-13, 19, (n, 3)), axis=0)
    feats = rng.uniform(-0.5, 0.5, (len(coords), 3))
    return coords, feats


def spconv_layer_outputs(model: Res16UNet, coords: np.ndarray, feats: np.ndarray) -> tuple[dict, np.ndarray]:
    """Run the spconv model on ME coordinates; every layer's output by ME name, and the origin."""
    import spconv.pytorch as sp

    origin = np.floor_divide(coords.min(axis=0), 16) * 16
    local = coords - origin
    shape = ((local.max(axis=0) + 1 + 15) // 16 * 16).tolist()
    names = {model.conv0: "conv0p1s1", model.final: "final"}
    for level in range(4):
        names[model.down[level]] = f"conv{level + 1}p{2 ** level}s2"
        names[model.encoder[level]] = f"block{level + 1}"
        names[model.up[level]] = f"convtr{level + 4}p{2 ** (4 - level)}s2"
        names[model.decoder[level]] = f"block{level + 5}"
    captured = {}
    hooks = [module.register_forward_hook(lambda m, i, o: captured.__setitem__(names[m], o)) for module in names]
    indices = torch.cat((torch.zeros((len(local), 1), dtype=torch.int32), torch.as_tensor(local, dtype=torch.int32)), 1)
    tensor = sp.SparseConvTensor(torch.as_tensor(feats, dtype=torch.float32), indices, shape, 1)
    try:
        with torch.no_grad(), single_cpu_thread(torch.device("cpu")):
            outputs = model.eval()(tensor)
    finally:
        for hook in hooks:
            hook.remove()
    captured["final"] = outputs[1]  # after the optional normalisation
    return captured, origin


def compare_layer(name, reference: me.SparseTensor, got, origin) -> float:
    """Max |difference| between a reference layer and the spconv layer, matched by coordinate."""
    stride = reference.stride
    sp_coords = got.indices[:, 1:].numpy().astype(np.int64) * stride + origin
    assert len(sp_coords) == len(reference.coords), f"{name}: {len(sp_coords)} voxels, reference {len(reference.coords)}"
    ref_rows = {tuple(c): i for i, c in enumerate(reference.coords.tolist())}
    order = np.array([ref_rows[tuple(c)] for c in sp_coords.tolist()])  # KeyError: a voxel ME lacks
    expected = reference.feats[order]
    diff = float(np.abs(got.features.numpy() - expected).max())
    assert diff <= TOLERANCE * (1 + np.abs(expected).max()), f"{name}: max difference {diff:.3g}"
    assert np.abs(expected).max() > 1e-3, f"{name}: degenerate (all-zero) layer tests nothing"
    return diff


# --- kernel offsets in MinkowskiEngine's order (hand-written from its region code) -------------

def test_minkowski_kernel_offset_orders():
    cube3 = me.hypercube_offsets(3)
    assert cube3[:4].tolist() == [[-1, -1, -1], [0, -1, -1], [1, -1, -1], [-1, 0, -1]]  # first axis fastest
    assert cube3[13].tolist() == [0, 0, 0] and cube3[-1].tolist() == [1, 1, 1]
    assert me.hypercube_offsets(2).tolist() == [[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0],
                                                [0, 0, 1], [1, 0, 1], [0, 1, 1], [1, 1, 1]]  # even: [0, K)
    assert me.hypercube_offsets(1).tolist() == [[0, 0, 0]]
    hybrid = me.hybrid_offsets(3)
    assert hybrid[:9].tolist() == [[0, 0, 0], [-1, 0, 0], [1, 0, 0], [0, -1, 0], [0, 1, 0],
                                   [-1, -1, 0], [-1, 1, 0], [1, -1, 0], [1, 1, 0]]
    assert hybrid[9:12].tolist() == [[0, 0, -1], [0, 0, 1], [-1, 0, -1]]
    assert len({tuple(o) for o in hybrid.tolist()}) == 27 == len(hybrid)


def test_reference_convolutions_on_a_hand_made_example():
    # Two voxels, one channel: a 3x3x3 HYPERCUBE kernel that is 1 at offset (+1, 0, 0) only.
    x = me.SparseTensor(np.array([[0, 0, 0], [1, 0, 0]]), np.array([[2.0], [3.0]]), 1)
    kernel = np.zeros((27, 1, 1))
    kernel[me.hypercube_offsets(3).tolist().index([1, 0, 0])] = 1.0
    assert me.convolution(x, kernel, me.hypercube_offsets(3)).feats.ravel().tolist() == [3.0, 0.0]  # out[u] = in[u + 1]
    down = me.convolution(x, np.ones((8, 1, 1)), me.hypercube_offsets(2), stride=2)
    assert down.coords.tolist() == [[0, 0, 0]] and down.stride == 2 and down.feats.ravel().tolist() == [5.0]
    up_kernel = np.arange(1.0, 9.0).reshape(8, 1, 1)
    up = me.convolution_transpose(down, up_kernel, me.hypercube_offsets(2), 2, x.coords)
    assert up.feats.ravel().tolist() == [5.0 * 1, 5.0 * 2]  # offset (0,0,0) is row 0, (1,0,0) row 1


# --- the equivalence ------------------------------------------------------------------------------

@pytest.mark.parametrize("normalize", [False, True])
def test_converted_model_matches_the_minkowski_reference_layer_by_layer(normalize):
    state = minkowski_res16unet_state(**SMALL, seed=1)
    model, arch = convert_checkpoint_content({"state_dict": state}, "random.pth", normalize_output=normalize)
    assert (arch.planes, arch.layers, arch.init_dim, arch.out_channels) == (SMALL["planes"], SMALL["layers"], 4, 5)
    coords, feats = small_voxels()
    reference = me.res16unet_forward({k: v.numpy() for k, v in state.items()}, coords, feats, normalize_feature=normalize)
    got, origin = spconv_layer_outputs(model, coords, feats)
    assert set(got) == set(reference)
    diffs = {name: compare_layer(name, reference[name], got[name], origin) for name in reference}
    assert len(diffs) == 18  # conv0, 4 strided convs, 4 transposed convs, 8 stages, final
    assert [reference[f"block{i}"].stride for i in range(1, 9)] == [2, 4, 8, 16, 8, 4, 2, 1]
    if normalize:
        assert np.allclose(np.linalg.norm(got["final"].features.numpy(), axis=1), 1.0, atol=1e-5)


def test_point_features_of_the_converted_model_match_the_reference(tmp_path):
    # End to end through csc_point_features: MinkowskiEngine's floor(xyz / voxel) grid, mean colour per voxel.
    state = minkowski_res16unet_state(**SMALL, seed=2)
    torch.save({"curr_iter": 100, "state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "released.pth")
    path, arch = convert_csc_checkpoint(tmp_path / "released.pth", tmp_path / "csc_spconv.pth", voxel_size=0.05)
    model, loaded_arch = load_csc_checkpoint(path)
    assert loaded_arch == arch and arch.normalize_output and arch.voxel_size == 0.05
    rng = np.random.default_rng(3)
    points = rng.uniform(-0.43, 0.61, (1500, 3))
    colors = rng.integers(0, 256, (1500, 3))
    got = csc_point_features(model, points, colors)
    grid = np.floor(points / 0.05).astype(np.int64)
    coords, point_voxel = np.unique(grid, axis=0, return_inverse=True)
    voxel_color = np.zeros((len(coords), 3))
    np.add.at(voxel_color, point_voxel.ravel(), colors / 255.0 - 0.5)
    voxel_color /= np.bincount(point_voxel.ravel())[:, None]
    reference = me.res16unet_forward({k: v.numpy() for k, v in state.items()}, coords, voxel_color, normalize_feature=True)
    expected = reference["final"].feats[point_voxel.ravel()]
    assert np.abs(got - expected).max() < TOLERANCE * (1 + np.abs(expected).max())
    # The released file is also accepted as it is (converted on load) and gives the same features.
    direct, direct_arch = load_csc_checkpoint(tmp_path / "released.pth")
    assert direct_arch.planes == arch.planes and direct_arch.normalize_output
    assert direct_arch.voxel_size == Res16UNetArch().voxel_size
    direct.arch.voxel_size = 0.05
    assert np.array_equal(csc_point_features(direct, points, colors), got)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # atomic write left nothing


def test_full_res16unet34c_maps_key_for_key():
    # The released model's layout (CSC pre-training: 3 -> 32 channels); shapes only, on the meta device.
    planes, layers = [32, 64, 128, 256, 256, 128, 96, 96], [2, 3, 4, 6, 2, 2, 2, 2]
    state = minkowski_res16unet_state(3, 32, 32, planes, layers, device="meta")
    arch = infer_arch(state, "partition8_4096_100k.pth")
    assert (arch.planes, arch.layers, arch.init_dim, arch.out_channels, arch.conv1_kernel_size) == (planes, layers, 32, 32, 3)
    converted = convert_state_dict(state, arch)
    with torch.device("meta"):
        expected = Res16UNet(arch).state_dict()
    assert sorted(converted) == sorted(expected)
    assert all(tuple(converted[k].shape) == tuple(expected[k].shape) for k in expected)
    n_weights = sum(v.numel() for k, v in state.items() if k.endswith(("kernel", "weight", ".bias")))
    assert n_weights == sum(v.numel() for k, v in expected.items() if k.endswith(("weight", "bias")))
    assert 37e6 < n_weights < 39e6


# --- errors ---------------------------------------------------------------------------------------

@pytest.fixture
def released(tmp_path):
    state = minkowski_res16unet_state(**SMALL, seed=4)
    return tmp_path, state


def test_a_checkpoint_of_another_architecture_is_rejected(released):
    tmp_path, _ = released
    resnet = {"conv1.kernel": torch.zeros(27, 3, 32), "bn1.bn.weight": torch.ones(32),
              "layer1.0.conv1.kernel": torch.zeros(27, 32, 32)}  # MinkowskiEngine's ResNet
    torch.save({"state_dict": resnet}, tmp_path / "resnet.pth")
    with pytest.raises(InputError, match=r"resnet\.pth: not a MinkowskiEngine Res16UNet \(CSC\) checkpoint"
                                         r".*'conv0p1s1\.kernel'.*bn1\.bn\.weight"):
        convert_csc_checkpoint(tmp_path / "resnet.pth", tmp_path / "out.pth")
    bottleneck = minkowski_res16unet_state(**SMALL)
    bottleneck["block1.0.conv3.kernel"] = torch.zeros(4, 4)
    with pytest.raises(InputError, match="Bottleneck blocks"):
        convert_checkpoint_content(bottleneck, "bottleneck.pth")
    # Our own format is not a MinkowskiEngine checkpoint either.
    model = Res16UNet(Res16UNetArch.small())
    with pytest.raises(InputError, match="not a MinkowskiEngine Res16UNet"):
        convert_checkpoint_content({"state_dict": model.state_dict()}, "spconv.pth")
    assert not (tmp_path / "out.pth").exists()


def test_a_missing_key_is_named(released):
    tmp_path, state = released
    del state["block3.0.norm2.bn.running_var"]
    torch.save({"state_dict": state}, tmp_path / "missing.pth")
    assert main(["convert-csc", str(tmp_path / "missing.pth"), "--out", str(tmp_path / "out.pth")]) == 2
    with pytest.raises(InputError, match=r"missing\.pth: .*missing keys 1 \[block3\.0\.norm2\.bn\.running_var\]"):
        convert_csc_checkpoint(tmp_path / "missing.pth", tmp_path / "out.pth")
    del state["final.kernel"]
    with pytest.raises(InputError, match=r"missing key 'final\.kernel'"):
        convert_checkpoint_content(state, "nofinal.pth")
    assert not (tmp_path / "out.pth").exists()


def test_a_wrong_shape_and_an_unexpected_key_are_named(released):
    _, state = released
    wrong = dict(state)
    wrong["block2.1.conv2.kernel"] = torch.zeros(27, 8, 7)
    with pytest.raises(InputError, match=re.escape("wrong shapes 1 [block2.1.conv2.kernel (27, 8, 7) != (27, 8, 8)]")):
        convert_checkpoint_content({"state_dict": wrong}, "wrong.pth")
    wrong = dict(state)
    wrong["conv2p2s2.kernel"] = torch.zeros(27, 4, 4)  # a 3x3x3 kernel where ME's Res16UNet has 2x2x2
    with pytest.raises(InputError, match=re.escape("conv2p2s2.kernel (27, 4, 4) != (8, 4, 4)")):
        convert_checkpoint_content({"state_dict": wrong}, "wrong.pth")
    extra = dict(state, **{"head.kernel": torch.zeros(5, 2)})
    with pytest.raises(InputError, match=re.escape("unexpected keys 1 [head.kernel]")):
        convert_checkpoint_content(extra, "extra.pth")


def test_cli_writes_the_checkpoint_features_3d_takes(released, capsys):
    tmp_path, state = released
    torch.save({"curr_iter": 1, "state_dict": state, "optimizer": {"state": {}, "param_groups": []}}, tmp_path / "csc.pth")
    out = tmp_path / "models" / "csc_spconv.pth"
    assert main(["convert-csc", str(tmp_path / "csc.pth"), "--out", str(out), "--no-normalize"]) == 0
    assert "wrote" in capsys.readouterr().out
    content = torch.load(out, weights_only=True)
    assert content["format"] == "res16unet-spconv" and content["arch"]["normalize_output"] is False
    model, arch = load_csc_checkpoint(out)
    assert arch.layers == SMALL["layers"] and not arch.normalize_output
