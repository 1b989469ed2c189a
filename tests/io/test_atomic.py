import os

import pytest

from pipeline.io.atomic import atomic_path, remove_stale_temporaries, write_text


def test_a_failed_write_leaves_neither_the_file_nor_a_temporary(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    target = write_text(tmp_path / "out.txt", "old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("new")
            raise KeyboardInterrupt
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]


def test_complete_write_is_renamed_with_usual_permissions_and_unique_temporaries(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second and first.parent == second.parent == tmp_path  # same folder: rename is atomic
        assert first.name.startswith(".out.txt.") and first.name.endswith(".tmp")
        first.write_text("a")
        second.write_text("b")
    assert target.read_text() == "a" and os.listdir(tmp_path) == ["out.txt"]
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


def test_stale_temporaries_of_a_killed_writer_are_removed(tmp_path):
    (tmp_path / ".out.h5.abc123.tmp").write_text("left by a killed job")
    (tmp_path / ".other.h5.abc123.tmp").write_text("another output's")
    remove_stale_temporaries(tmp_path / "out.h5")
    assert sorted(os.listdir(tmp_path)) == [".other.h5.abc123.tmp"]
