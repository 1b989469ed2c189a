import numpy as np
import pytest

from pipeline.errors import InputError
from pipeline.io.ply import read_ply, write_ply


def test_binary_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    vertices = rng.normal(size=(50, 3)).astype(np.float32)
    colors = rng.integers(0, 256, (50, 3)).astype(np.uint8)
    faces = rng.integers(0, 50, (30, 3))
    write_ply(tmp_path / "m.ply", vertices, colors, faces)
    ply = read_ply(tmp_path / "m.ply")
    np.testing.assert_array_equal(ply.vertices, vertices)
    np.testing.assert_array_equal(ply.colors, colors)
    np.testing.assert_array_equal(ply.faces, faces)
    assert ply.normals is None


def test_ascii_with_quads_and_alpha(tmp_path):
    text = """ply
format ascii 1.0
comment made by hand
element vertex 4
property float x
property float y
property float z
property uchar red
property uchar green
property uchar blue
property uchar alpha
element face 1
property list uchar int vertex_indices
end_header
0 0 0 255 0 0 255
1 0 0 0 255 0 255
1 1 0 0 0 255 255
0 1 0 9 9 9 255
4 0 1 2 3
"""
    (tmp_path / "q.ply").write_text(text)
    ply = read_ply(tmp_path / "q.ply")
    assert ply.faces.tolist() == [[0, 1, 2], [0, 2, 3]]  # quad split into a fan
    assert ply.colors[3].tolist() == [9, 9, 9]


def test_big_endian_vertices_with_double_and_normals(tmp_path):
    header = (
        "ply\nformat binary_big_endian 1.0\nelement vertex 2\nproperty double x\nproperty double y\n"
        "property double z\nproperty float nx\nproperty float ny\nproperty float nz\nend_header\n"
    )
    table = np.array([(1, 2, 3, 0, 0, 1), (4, 5, 6, 1, 0, 0)], dtype=[("x", ">f8"), ("y", ">f8"), ("z", ">f8"), ("nx", ">f4"), ("ny", ">f4"), ("nz", ">f4")])
    (tmp_path / "b.ply").write_bytes(header.encode() + table.tobytes())
    ply = read_ply(tmp_path / "b.ply")
    assert ply.vertices.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert ply.normals.tolist() == [[0, 0, 1], [1, 0, 0]]
    assert ply.faces is None and ply.colors is None


def test_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="nope.ply: PLY file does not exist"):
        read_ply(tmp_path / "nope.ply")
    (tmp_path / "x.ply").write_text("hello\n")
    with pytest.raises(InputError, match="x.ply: not a PLY file"):
        read_ply(tmp_path / "x.ply")
    write_ply(tmp_path / "t.ply", np.zeros((10, 3)), faces=np.zeros((4, 3), int))
    data = (tmp_path / "t.ply").read_bytes()
    (tmp_path / "t.ply").write_bytes(data[:-20])
    with pytest.raises(InputError, match="truncated"):
        read_ply(tmp_path / "t.ply")
    write_ply(tmp_path / "o.ply", np.zeros((3, 3)), faces=np.array([[0, 1, 5]]))
    with pytest.raises(InputError, match="outside 0..2"):
        read_ply(tmp_path / "o.ply")
