import pytest

from nanohet.atomic import atomic_paths, write_text_atomic


def test_failed_write_leaves_nothing(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    with pytest.raises(RuntimeError):
        with atomic_paths(a, b) as (ta, tb):
            ta.write_text("half")
            raise RuntimeError("boom")
    assert not a.exists() and not b.exists()
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_previous_version(tmp_path):
    a = tmp_path / "a.txt"
    write_text_atomic(a, "old")
    with pytest.raises(ValueError):
        with atomic_paths(a) as (ta,):
            ta.write_text("new")
            raise ValueError
    assert a.read_text() == "old"


def test_success_replaces_and_keeps_suffix(tmp_path):
    target = tmp_path / "sub" / "x.ome.tif"
    with atomic_paths(target) as (tmp,):
        assert tmp.name.endswith(".ome.tif") and tmp.parent == target.parent
        tmp.write_bytes(b"1")
    assert target.read_bytes() == b"1"
