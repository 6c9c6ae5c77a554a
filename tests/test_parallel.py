"""Independent tasks in processes (nanohet.parallel.run_parallel) and the demo cohort simulated through it."""

import hashlib
import time

import pytest

from nanohet.parallel import run_parallel


def _slow_square(x: int, delay: float) -> int:
    time.sleep(delay)
    return x * x


def _fail(x: int) -> int:
    raise ValueError(f"task {x} failed")


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_results_come_back_in_task_order(workers):
    """The first tasks finish last: the results are still in the tasks' order, whatever the number of workers."""
    tasks = [(_slow_square, {"x": x, "delay": 0.05 * (5 - x)}) for x in range(6)]
    assert run_parallel(tasks, workers) == [x * x for x in range(6)]
    assert run_parallel([], workers) == []


def test_an_error_in_a_task_is_raised():
    with pytest.raises(ValueError, match="task 3 failed"):
        run_parallel([(_slow_square, {"x": 1, "delay": 0.0}), (_fail, {"x": 3})], 2)


def _digests(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_demo_cohort_does_not_depend_on_the_number_of_processes(tmp_path):
    """Two tiny samples and a control simulated one at a time and two at a time: the same bytes in every file."""
    from nanohet.steps.demo import demo_cohort

    demo = {"seed": 7, "phantom": {"tumour_diameter_mm": 0.8, "margin_mm": 0.1, "msi_pixel_um": 40.0},
            "groups": {"g1": {}}, "level_sd": {"animal": 0.2, "tumour": 0.1, "section": 0.05}}
    for threads in (1, 2):
        root = tmp_path / f"t{threads}"
        samples = [{"sample": s, "group": "g1", "subject": s[:3], "tumour": "T1", "truth_dir": str(root / "truth" / s),
                    **{f"out_{m}": str(root / s / f"{m}{ext}") for m, ext in (
                        ("fluorescence", ".ome.tif"), ("he", ".ome.tif"), ("msi", ".imzML"), ("volume", ".nii.gz"),
                        ("volume_mask", ".nii.gz"))}} for s in ("m01_T1_s1", "m02_T1_s1")]
        controls = [{"control": "c1", "out_fluorescence": str(root / "controls" / "c1.ome.tif")}]
        demo_cohort(samples, demo, controls=controls, threads=threads)
    one, two = _digests(tmp_path / "t1"), _digests(tmp_path / "t2")
    assert len(one) >= 20 and one == two
