"""Stage parameters: config.yaml and the schema agree with the typed definitions; bad keys and values are refused."""

import dataclasses
import importlib
from pathlib import Path

import pytest
import yaml

from pipeline.params import STAGES, ParamsError, StageParams, stage_params

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())
SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())


def _sparse_defaults(cls, name):
    """A sparse section's backend defaults (None for a section that lists all its keys)."""
    spec = next(f for f in dataclasses.fields(cls) if f.name == name).metadata.get("keys")
    if not spec:
        return None
    module, attr = spec.split(":")
    return getattr(importlib.import_module(module), attr)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_config_yaml_block_is_the_dataclass_defaults(stage):
    assert CONFIG[stage] == STAGES[stage].defaults()


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_schema_defaults_are_the_dataclass_defaults(stage):
    cls = STAGES[stage]
    properties = SCHEMA["properties"][stage]["properties"]
    defaults = cls.defaults()
    assert set(properties) == set(defaults), "the schema documents exactly the stage's keys"
    for key, value in defaults.items():
        prop = properties[key]
        if "properties" in prop:  # a nested section: each documented key's default
            backend = _sparse_defaults(cls, key)
            assert set(prop["properties"]) <= set(value if backend is None else backend), f"{stage}.{key}"
            for sub, sub_prop in prop["properties"].items():
                # a sparse section's keys it does not list keep the backend's defaults
                expected = value[sub] if sub in value else backend[sub]
                assert sub_prop.get("default", expected) == expected, f"{stage}.{key}.{sub}"
        else:
            assert prop.get("default") == value, f"{stage}.{key}"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_typo_key_is_refused_naming_stage_key_and_the_closest_key(stage):
    first = STAGES[stage].defaults()
    key = next(iter(first))
    typo = key[:-1] + ("x" if key[-1] != "x" else "y")
    with pytest.raises(ParamsError, match=f"unknown {stage} parameter '{typo}' \\(did you mean '{key}'\\?\\)"):
        stage_params(stage, {typo: first[key]})


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_config_section_round_trips(stage):
    params = stage_params(stage, CONFIG[stage])
    assert isinstance(params, StageParams)
    assert params.to_dict() == CONFIG[stage]
    assert {key: getattr(params, key) for key in CONFIG[stage]} == CONFIG[stage]  # read as attributes
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(params, next(iter(CONFIG[stage])), None)


def test_wrong_types_and_choices_are_refused():
    with pytest.raises(ParamsError, match=r"lift.frame_stride must be an integer, got '2'"):
        stage_params("lift", {"frame_stride": "2"})
    with pytest.raises(ParamsError, match=r"ingest.boxes_from_ground_truth must be true or false"):
        stage_params("ingest", {"boxes_from_ground_truth": 1})
    with pytest.raises(ParamsError, match=r"ncut.solver must be one of 'auto', 'lanczos', 'dense', got 'qr'"):
        stage_params("ncut", {"solver": "qr"})
    with pytest.raises(ParamsError, match=r"features_2d.handcrafted must be a mapping"):
        stage_params("features_2d", {"handcrafted": 3})
    assert stage_params("fuse_mesh", {"voxel": 1}).voxel == 1  # YAML's 1 for 1.0


def test_nested_sections_merge_and_check_keys():
    params = stage_params("keyframe_masks", {"keyframes": {"stride": 5}, "sam": {"points_per_side": 8}})
    assert params.keyframes == {**STAGES["keyframe_masks"].defaults()["keyframes"], "stride": 5}
    assert params.sam == {"model_type": "vit_h", "checkpoint": None, "points_per_side": 8}  # sparse: the backend's keys
    with pytest.raises(ParamsError, match=r"unknown keyframe_masks.keyframes parameter 'strid' \(did you mean 'stride'\?\)"):
        stage_params("keyframe_masks", {"keyframes": {"strid": 5}})
    with pytest.raises(ParamsError, match=r"unknown track.sam2 parameter 'windw'"):
        stage_params("track", {"sam2": {"windw": 5}})
    with pytest.raises(ParamsError, match=r"track.reprojection.memory must be like True, got 'yes'"):
        stage_params("track", {"reprojection": {"memory": "yes"}})
