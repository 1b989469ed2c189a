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
from pipeline.io.artifacts import FORMAT_VERSIONS, read_artifact, write_artifact
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
        from pipeline.io import artifacts
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
    assert leftovers and all(p.name.startswith(".scene.h5.") and p.name.endswith(".tmp") for p in leftovers)
    (tmp_path / ".scene.h5.resume").mkdir()  # not a temporary of the artifact: must survive
    write_artifact(target, "scene", {"vertices": np.ones((3, 3))})  # the next run of the rule
    assert sorted(p.name for p in tmp_path.iterdir()) == [".scene.h5.resume", "scene.h5"]


def test_params_attribute_is_json(tmp_path):
    path = write_artifact(tmp_path / "a.h5", "scene", {"x": np.zeros(1)}, params={"nested": {"a": [1, 2]}})
    with h5py.File(path) as handle:
        assert json.loads(handle.attrs["params"]) == {"nested": {"a": [1, 2]}}
    assert oct(os.stat(path).st_mode & 0o777) != oct(0o600)  # not left private by mkstemp


def test_streamed_and_grown_datasets_read_back_like_written_ones(tmp_path):
    from pipeline.io.artifacts import append_rows, artifact_writer, open_artifact

    target = tmp_path / "tracks.h5"
    with artifact_writer(target, "tracks", params={"a": 1}) as out:
        labels = out.stream("labels", (3, 4, 5), np.uint16)
        bits = out.growing("bits", (2,), np.uint8, rows_per_chunk=2)
        for step in range(3):
            labels[step] = np.full((4, 5), step, np.uint16)
            append_rows(bits, np.full((step, 2), step, np.uint8))  # 0, 1 and 2 rows
        assert not target.exists()  # only complete artifacts appear
        out.write({"small": np.arange(3)})
        out.set_attrs({"n": 3, "names": ["x"]})
    art = read_artifact(target, "tracks")
    assert art["labels"][:, 0, 0].tolist() == [0, 1, 2] and art["bits"][:, 0].tolist() == [1, 2, 2]
    assert art.attrs["n"] == 3 and json.loads(art.attrs["names"]) == ["x"] and art.params == {"a": 1}
    with open_artifact(target, "tracks", required=["labels"]) as lazy:
        assert isinstance(lazy["labels"], h5py.Dataset) and lazy["labels"][2, 3, 4] == 2
    with pytest.raises(ArtifactError, match="lacks required"):
        with open_artifact(target, "tracks", required=["missing"]):
            pass
    with pytest.raises(ArtifactError, match="expected 'scene'"):
        with open_artifact(target, "scene"):
            pass


def test_failed_streaming_write_leaves_nothing(tmp_path):
    from pipeline.io.artifacts import artifact_writer

    with pytest.raises(RuntimeError):
        with artifact_writer(tmp_path / "tracks.h5", "tracks") as out:
            out.stream("labels", (2, 2, 2), np.uint16)[0] = 1
            raise RuntimeError("tracker failed")
    assert list(tmp_path.iterdir()) == []
