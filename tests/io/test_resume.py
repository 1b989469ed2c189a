"""Resume folders of per-frame stages: consistent after any kill, discarded when stale."""

import numpy as np

from pipeline.io.resume import ResumeFolder, fingerprint, json_array


def test_chunks_and_state_round_trip(tmp_path):
    folder = ResumeFolder(tmp_path / "x.h5", "key")
    folder.save(0, 3, {"rows": np.arange(3)}, {"total": np.asarray(3), "meta": json_array({"a": [1, 2]})})
    folder.save(3, 5, {"rows": np.arange(3, 5)}, {"total": np.asarray(10), "meta": json_array({"a": []})})
    point = ResumeFolder(tmp_path / "x.h5", "key").load()
    assert point.next_step == 5 and int(point.state["total"]) == 10 and point.json("meta") == {"a": []}
    chunks = list(point.chunks())
    assert [first for first, _ in chunks] == [0, 3]
    assert np.concatenate([c["rows"] for _, c in chunks]).tolist() == [0, 1, 2, 3, 4]
    assert (tmp_path / "x.h5.resume").is_dir()


def test_other_fingerprint_discards_the_folder(tmp_path):
    ResumeFolder(tmp_path / "x.h5", "old").save(0, 2, {"rows": np.arange(2)}, {})
    assert ResumeFolder(tmp_path / "x.h5", "new").load() is None
    assert not (tmp_path / "x.h5.resume").exists()


def test_chunk_saved_after_the_state_is_ignored(tmp_path):
    """A kill between writing a chunk and the state leaves a chunk the state does not cover yet."""
    folder = ResumeFolder(tmp_path / "x.h5", "key")
    folder.save(0, 2, {"rows": np.arange(2)}, {})
    (folder.path / "chunk_00000002_00000004.npz").write_bytes((folder.path / "chunk_00000000_00000002.npz").read_bytes())
    point = folder.load()
    assert point.next_step == 2 and [first for first, _ in point.chunks()] == [0]


def test_missing_or_broken_files_mean_starting_over(tmp_path):
    folder = ResumeFolder(tmp_path / "x.h5", "key")
    folder.save(0, 2, {"rows": np.arange(2)}, {})
    folder.save(2, 4, {"rows": np.arange(2, 4)}, {})
    (folder.path / "chunk_00000000_00000002.npz").unlink()
    assert folder.load() is None and not folder.path.exists()
    folder.save(0, 1, {"rows": np.arange(1)}, {})
    (folder.path / "state.npz").write_bytes(b"half a file")
    assert folder.load() is None and not folder.path.exists()


def test_leftover_temporary_files_are_not_read(tmp_path):
    folder = ResumeFolder(tmp_path / "x.h5", "key")
    folder.save(0, 1, {"rows": np.arange(1)}, {})
    (folder.path / ".state.npz.abc.tmp").write_bytes(b"killed while writing")
    assert folder.load().next_step == 1


def test_fingerprint_sees_parameters_and_input_changes(tmp_path):
    data = tmp_path / "in.bin"
    data.write_bytes(b"abc")
    first = fingerprint({"a": 1}, [data])
    assert fingerprint({"a": 1}, [data]) == first
    assert fingerprint({"a": 2}, [data]) != first
    data.write_bytes(b"abcd")
    assert fingerprint({"a": 1}, [data]) != first


def test_unchunked_folder_keeps_everything_in_the_state(tmp_path):
    folder = ResumeFolder(tmp_path / "x.h5", "key", chunked=False)
    folder.save(4, 4, None, {"mean": np.ones(3)})
    point = ResumeFolder(tmp_path / "x.h5", "key", chunked=False).load()
    assert point.next_step == 4 and point.state["mean"].tolist() == [1, 1, 1] and not list(point.chunks())


def test_run_settings_do_not_change_the_fingerprint(tmp_path):
    from pipeline.io.resume import with_run_settings

    data = tmp_path / "in.bin"
    data.write_bytes(b"abc")
    assert fingerprint({"a": 1, "checkpoint_every": 5}, [data]) == fingerprint({"a": 1, "checkpoint_every": 50}, [data])
    assert fingerprint({"a": 1, "log_every": 5}, [data]) == fingerprint({"a": 1}, [data])
    assert with_run_settings({"a": 1}, {"a": 2, "checkpoint_every": 3}) == {"a": 1, "checkpoint_every": 3}
