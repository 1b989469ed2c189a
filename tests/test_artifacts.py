import json
import os
import signal
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from pipeline import __version__
from pipeline.artifacts import FORMAT_VERSIONS, read_artifact, write_artifact
from pipeline.errors import ArtifactError


def test_round_trip_keeps_arrays_groups_strings_and_attributes(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "vertices": rng.normal(size=(5000, 3)).astype(np.float32),
        "small": np.arange(4, dtype=np.int32),
        "frames": {"id": np.arange(3), "pose": np.eye(4)[None].repeat(3, 0)},
        "labels": np.asarray(["chair", "table", "ß-umlaut"]),
    }
    path = write_artifact(tmp_path / "a.h5", "scene", arrays, params={"k": 1}, inputs=["x/y"], attrs={"scene_name": "s"})
    art = read_artifact(path, "scene", required=["vertices", "frames/pose"])
    np.testing.assert_array_equal(art["vertices"], arrays["vertices"])
    np.testing.assert_array_equal(art["frames/pose"], arrays["frames"]["pose"])
    assert art["labels"].tolist() == ["chair", "table", "ß-umlaut"]
    assert art.params == {"k": 1} and art.inputs == ["x/y"]
    assert art.attrs["package_version"] == __version__
    assert art.attrs["format_version"] == FORMAT_VERSIONS["scene"]
    assert art.attrs["scene_name"] == "s"
    with h5py.File(path) as handle:  # large arrays are chunked and compressed
        assert handle["vertices"].compression == "gzip"
        assert handle["vertices"].chunks is not None


def test_reader_names_file_and_problem(tmp_path):
    path = write_artifact(tmp_path / "a.h5", "scene", {"vertices": np.zeros((2, 3))})
    with pytest.raises(ArtifactError, match="expected 'superpoints'"):
        read_artifact(path, "superpoints")
    with pytest.raises(ArtifactError, match=r"a\.h5.*lacks required dataset.*'faces'"):
        read_artifact(path, "scene", required=["faces"])
    with pytest.raises(ArtifactError, match="missing scene artifact"):
        read_artifact(tmp_path / "nope.h5", "scene")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(ArtifactError, match="junk.h5: not a readable HDF5"):
        read_artifact(tmp_path / "junk.h5", "scene")
    art = read_artifact(path, "scene")
    with pytest.raises(ArtifactError, match="has no dataset 'normals'"):
        art["normals"]


def test_reader_refuses_other_format_version(tmp_path):
    path = write_artifact(tmp_path / "a.h5", "scene", {"vertices": np.zeros((2, 3))})
    with h5py.File(path, "a") as handle:
        handle.attrs["format_version"] = 999
    with pytest.raises(ArtifactError, match="format version 999"):
        read_artifact(path, "scene")


def test_failed_write_leaves_nothing(tmp_path):
    class Boom(RuntimeError):
        pass

    class Exploding(dict):
        def items(self):
            yield "a", np.zeros(3)
            raise Boom()

    with pytest.raises(Boom):
        write_artifact(tmp_path / "a.h5", "scene", Exploding())
    assert list(tmp_path.iterdir()) == []


def test_killed_write_leaves_no_finished_looking_file(tmp_path):
    """SIGKILL in the middle of a write: the final name must not exist afterwards."""
    target = tmp_path / "scene.h5"
    script = textwrap.dedent(
        f"""
        import os, signal, numpy as np
        from pipeline import artifacts
        real = artifacts._write_tree
        def write_then_die(group, arrays):
            real(group, arrays)
            group.file.flush()
            print("written", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        artifacts._write_tree = write_then_die
        artifacts.write_artifact({str(target)!r}, "scene", {{"vertices": np.ones((100000, 3))}})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "written" in proc.stdout
    assert not target.exists()
    leftovers = list(tmp_path.iterdir())
    assert all(p.name.startswith(".scene.h5.") and p.name.endswith(".tmp") for p in leftovers)


def test_params_attribute_is_json(tmp_path):
    path = write_artifact(tmp_path / "a.h5", "scene", {"x": np.zeros(1)}, params={"nested": {"a": [1, 2]}})
    with h5py.File(path) as handle:
        assert json.loads(handle.attrs["params"]) == {"nested": {"a": [1, 2]}}
    assert oct(os.stat(path).st_mode & 0o777) != oct(0o600)  # not left private by mkstemp
