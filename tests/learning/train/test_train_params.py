"""The train section's defaults have one source: pipeline/learning/train/config.py (DEFAULT_PARAMS and the
dataclasses it builds). config.yaml and the schema must agree with it key by key."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from pipeline.learning.train.beep3d import Beep3DConfig, LossWeights
from pipeline.learning.train.config import AUGMENT_DEFAULTS, DEFAULT_PARAMS, resolve
from pipeline.learning.train.selftrain import SelfTrainConfig

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())["properties"]["train"]["properties"]
CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())["train"]


def _defaults(properties: dict) -> dict:
    return {key: spec["default"] for key, spec in properties.items() if "default" in spec}


def test_config_yaml_train_block_is_the_code_defaults():
    for key, value in CONFIG.items():
        assert key in DEFAULT_PARAMS, f"config.yaml train.{key} is not a train parameter"
        assert value == DEFAULT_PARAMS[key], f"config.yaml train.{key}: {value!r} != code default {DEFAULT_PARAMS[key]!r}"
    resolve(CONFIG)  # and it resolves


def test_schema_lists_every_train_parameter_with_the_code_defaults():
    assert set(SCHEMA) == set(DEFAULT_PARAMS)
    for key, value in _defaults(SCHEMA).items():
        if isinstance(DEFAULT_PARAMS[key], dict):
            continue  # nested sections: below
        assert value == DEFAULT_PARAMS[key], f"schema train.{key}: {value!r} != {DEFAULT_PARAMS[key]!r}"


@pytest.mark.parametrize("section, cls", [("loss", LossWeights), ("box", Beep3DConfig), ("unsupervised", SelfTrainConfig)])
def test_schema_sections_match_their_dataclasses(section, cls):
    properties = SCHEMA[section]["properties"]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in _defaults(properties).items():
        assert key in fields, f"schema train.{section}.{key} is not a field of {cls.__name__}"
        default = cls().__getattribute__(key)
        assert value == default, f"schema train.{section}.{key}: {value!r} != {cls.__name__}.{key} {default!r}"
    missing = set(fields) - set(properties)
    assert not missing, f"{cls.__name__} fields missing from the schema's train.{section}: {sorted(missing)}"


def test_schema_augment_defaults_are_the_code_defaults():
    assert _defaults(SCHEMA["augment"]["properties"]) == AUGMENT_DEFAULTS
