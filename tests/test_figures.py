"""Figures: written as PNG, SVG and PDF without dates or random ids, so a rerun writes the same bytes."""
import subprocess
import sys

import pytest

SCRIPT = """
import sys
import matplotlib.pyplot as plt
from nanohet.figures.style import save
fig, ax = plt.subplots()
ax.imshow([[0, 1], [2, 3]])
ax.plot([0, 1], [1, 0])
ax.set_title("drug (µg/g)")
save(fig, *sys.argv[1:])
"""


def _write(folder):
    paths = [folder / f"figure.{s}" for s in ("png", "svg", "pdf")]
    subprocess.run([sys.executable, "-c", SCRIPT, *map(str, paths)], check=True)
    return [p.read_bytes() for p in paths]


def test_figures_are_byte_identical_between_processes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = _write(tmp_path / "a"), _write(tmp_path / "b")
    assert first == second
    png, svg, pdf = first
    assert png.startswith(b"\x89PNG") and b"<svg" in svg and pdf.startswith(b"%PDF")
    assert b"CreationDate" not in pdf and b"<dc:date>" not in svg


def test_an_unknown_figure_format_is_refused(tmp_path):
    import matplotlib.pyplot as plt

    from nanohet.figures.style import save

    with pytest.raises(ValueError, match=r"\.png, \.svg or \.pdf"):
        save(plt.figure(), tmp_path / "figure.jpg")
    assert not list(tmp_path.iterdir())
