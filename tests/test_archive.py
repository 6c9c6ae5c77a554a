"""Reproducibility archive: pack a finished run, verify it by rerunning, detect tampering."""
import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from nanohet.repro.verify import safe_extract
from nanohet.errors import InputError

from conftest import STANDARD_LEVELS

pytestmark = pytest.mark.workflow


def nanohet(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "nanohet.cli", *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def archive(finished_run):
    workdir, _ = finished_run
    res = nanohet("archive", "--name", "paper", "--workdir", str(workdir))
    assert res.returncode == 0, res.stderr
    path = workdir / "results" / "archive" / "paper.tar.gz"
    assert path.is_file()
    return path


def _members(path):
    with tarfile.open(path) as tar:
        return {m.name: (tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()}


def test_archive_contents(archive):
    m = _members(archive)
    for name in ("paper/workflow/Snakefile", "paper/workflow/src/nanohet/steps/msi.py", "paper/config/config.yaml",
                 "paper/config/samples.tsv", "paper/inputs/CHECKSUMS.sha256", "paper/environment/pip-freeze.txt",
                 "paper/environment/environment.json", "paper/results/tables/cohort_metrics.tsv",
                 "paper/results/figures/cohort_summary.png", "paper/results/report.html",
                 "paper/MANIFEST.sha256", "paper/ro-crate-metadata.json"):
        assert name in m, name
    checks = m["paper/inputs/CHECKSUMS.sha256"].decode().splitlines()
    # per full sample 6 files (4 modalities, the .ibd, the volume mask), the partial samples' 4 (msi, .ibd, volume,
    # mask) and 1 (fluorescence), per standard its imzML and .ibd, the control section, and the regions drawn on
    # the first sample (tests/conftest.py)
    assert any(line.endswith("a01_T1/msi.ibd") for line in checks)
    assert len(checks) == 2 * 6 + 4 + 1 + 2 * len(STANDARD_LEVELS) + 1 + 1
    assert any(line.endswith("controls/control_1.ome.tif") for line in checks)
    assert any(line.endswith("drawn.geojson") for line in checks) and any(line.endswith("c01_T1/msi.ibd") for line in checks)
    assert any(line.endswith("standards/level_0.ibd") for line in checks)
    manifest = m["paper/MANIFEST.sha256"].decode().splitlines()
    assert len(manifest) == sum(1 for k, v in m.items() if v is not None) - 1
    env = json.loads(m["paper/environment/environment.json"])
    assert env["git_commit"] and "python" in env
    assert b"snakemake==" in m["paper/environment/pip-freeze.txt"]


def test_ro_crate_is_a_workflow_run_crate(archive):
    crate = json.loads(_members(archive)["paper/ro-crate-metadata.json"])
    graph = {e["@id"]: e for e in crate["@graph"]}
    root = graph["./"]
    assert {"@id": "https://w3id.org/ro/wfrun/workflow/0.5"} in root["conformsTo"]
    assert root["mainEntity"] == {"@id": "workflow/Snakefile"}
    assert "ComputationalWorkflow" in graph["workflow/Snakefile"]["@type"]
    action = next(e for e in crate["@graph"] if e.get("@type") == "CreateAction")
    assert action["instrument"] == {"@id": "workflow/Snakefile"}
    assert {"@id": "results/tables/cohort_metrics.tsv"} in action["result"]
    assert {"@id": "config/samples.tsv"} in action["object"]


def test_verify_reproduces_every_result(archive):
    res = nanohet("verify", str(archive))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "VERIFIED" in res.stdout and " 0 differ" in res.stdout
    assert "not compared (records run dates and times): results/report.html" in res.stdout


def test_tampered_result_fails_verification(archive, tmp_path):
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(archive) as src, gzip.open(tampered, "wb") as gz, tarfile.open(fileobj=gz, mode="w") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read() if m.isfile() else None
            if m.name == "paper/results/tables/cohort_summary.tsv":
                data = data.replace(b"liposomal", b"liposomaI", 1)
                m.size = len(data)
            dst.addfile(m, io.BytesIO(data) if data is not None else None)
    res = nanohet("verify", str(tampered))
    assert res.returncode == 1
    assert "TAMPERED" in res.stdout and "results/tables/cohort_summary.tsv" in res.stdout
    assert "NOT VERIFIED" in res.stdout


def _rewrite(archive, out, edit):
    """A copy of ``archive`` whose members' bytes pass through ``edit(name, data)`` (None drops the member)."""
    with tarfile.open(archive) as src, gzip.open(out, "wb") as gz, tarfile.open(fileobj=gz, mode="w") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read() if m.isfile() else None
            if data is not None:
                data = edit(m.name, data)
                if data is None:
                    continue
                m.size = len(data)
            dst.addfile(m, io.BytesIO(data) if data is not None else None)
    return out


def test_a_changed_result_dropped_from_the_manifest_is_not_verified(archive, tmp_path):
    """Changing a result and deleting its manifest line does not fool verify: every file the archive holds must
    be in its manifest, so an incomplete manifest vouches for nothing (and no rerun is started)."""
    def edit(name, data):
        if name == "paper/results/tables/cohort_metrics.tsv":
            return data.replace(b"liposomal", b"liposomaI", 1)
        if name == "paper/MANIFEST.sha256":
            return b"".join(l for l in data.splitlines(keepends=True) if b"results/tables/cohort_metrics.tsv" not in l)
        return data

    res = nanohet("verify", str(_rewrite(archive, tmp_path / "t.tar.gz", edit)))
    assert res.returncode == 1 and "NOT VERIFIED" in res.stdout
    assert "NOT IN THE MANIFEST (the manifest cannot vouch for it): results/tables/cohort_metrics.tsv" in res.stdout
    assert "rerunning" not in res.stdout


def test_an_archive_without_results_is_not_verified(archive, tmp_path):
    def edit(name, data):
        if "/results/" in name:
            return None
        return b"" if name == "paper/MANIFEST.sha256" else data

    res = nanohet("verify", str(_rewrite(archive, tmp_path / "empty.tar.gz", edit)))
    assert res.returncode == 1 and "NOT VERIFIED" in res.stdout
    assert "the archive holds no result to compare" in res.stdout


@pytest.mark.parametrize("listing", ["paper/inputs/CHECKSUMS.sha256", "paper/MANIFEST.sha256"])
def test_paths_read_from_the_archive_stay_inside_it(archive, tmp_path, listing):
    """A checksum or manifest line naming a path outside the extraction folder is refused, and nothing is written
    outside it."""
    evil = "../../" + tmp_path.name + "/evil/evil.txt"

    def edit(name, data):
        if name == listing:
            return data + f"{'0' * 64}  {evil}\n".encode()
        return data

    bad = _rewrite(archive, tmp_path / "evil.tar.gz", edit)
    if listing.endswith("CHECKSUMS.sha256"):  # keep the manifest true to the edited file
        import hashlib

        with tarfile.open(bad) as t:
            checks = t.extractfile(listing).read()
        fixed = hashlib.sha256(checks).hexdigest().encode()

        def fix_manifest(name, data):
            if name != "paper/MANIFEST.sha256":
                return data
            return b"".join((fixed + l[64:]) if l.endswith(b"inputs/CHECKSUMS.sha256\n") else l
                            for l in data.splitlines(keepends=True))

        bad = _rewrite(bad, tmp_path / "evil2.tar.gz", fix_manifest)
    res = nanohet("verify", str(bad))
    assert res.returncode == 2 and "a path outside the archive's folder; refused" in res.stderr, res.stdout + res.stderr
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize("name, kind", [("../evil.txt", "file"), ("/abs/evil.txt", "file"),
                                        ("top/link", "symlink")])
def test_unsafe_archives_are_refused(tmp_path, name, kind):
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        if kind == "symlink":
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
    with pytest.raises(InputError, match="refusing"):
        safe_extract(bad, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_archive_before_running_is_a_clear_error(tmp_path):
    from conftest import write_cohort

    write_cohort(tmp_path)
    (tmp_path / "results").mkdir()
    res = nanohet("archive", "--workdir", str(tmp_path))
    assert res.returncode == 2 and "run the analysis before archiving" in res.stderr


def test_tables_are_compared_without_their_run_time_column(tmp_path):
    from nanohet.repro.verify import same_result

    a, b, c, d = (tmp_path / f"{n}.tsv" for n in "abcd")
    a.write_text("edge\tmetric_after\trun_time_s\nmsi->fluorescence\t-0.69\t3.1\n")
    b.write_text("edge\tmetric_after\trun_time_s\nmsi->fluorescence\t-0.69\t4.7\n")
    c.write_text("edge\tmetric_after\trun_time_s\nmsi->fluorescence\t-0.70\t3.1\n")
    d.write_text("edge\tmetric_after\nmsi->fluorescence\t-0.69\n")
    assert same_result(a, b)            # only the run time differs
    assert not same_result(a, c)        # a result differs
    assert not same_result(a, d)        # a column is missing
    e, f = tmp_path / "e.png", tmp_path / "f.png"
    e.write_bytes(b"\x89PNG1")
    f.write_bytes(b"\x89PNG2")
    assert not same_result(e, f) and same_result(e, e)


def test_every_kind_of_result_is_packed_and_temporaries_are_not(finished_run, tmp_path):
    """OME-TIFF images, grids, QC figures, vector figures and transforms are packed; the temporaries of atomic
    writes, hidden files, input caches, logs and the demo's generated inputs are not."""
    workdir, _ = finished_run
    stray = [workdir / "results" / "tables" / ".cohort_metrics.tsv.123.partial.tsv",
             workdir / "results" / "quantify" / "a01_T1" / "metrics.tsv.partial"]
    for p in stray:
        p.write_text("half-written\n")
    try:
        res = nanohet("archive", "--name", "kinds", "--workdir", str(workdir))
        assert res.returncode == 0, res.stderr
        names = set(_members(workdir / "results" / "archive" / "kinds.tar.gz"))
    finally:
        for p in stray:
            p.unlink()
    for rel in ("msi/a01_T1/ion_images.ome.tif", "microscopy/a01_T1/masks.ome.tif",
                "registration/a01_T1/msi_in_reference.ome.tif", "registration/a01_T1/msi_to_fluorescence_qc.png",
                "quantify/a01_T1/analysis_grid.json", "quantify/a01_T1/masks_on_msi.ome.tif",
                "figures/cohort_summary.svg", "figures/cohort_summary.pdf", "tables/qc_flags.tsv"):
        assert f"kinds/results/{rel}" in names, rel
    assert not any(".partial" in n or "/results/logs/" in n or "/results/benchmarks/" in n or "/results/demo/" in n
                   or n.endswith("imzml_index.npz") for n in names)


def test_inputs_outside_the_project_round_trip(finished_run, tmp_path):
    """A project whose sample sheet names its inputs by absolute paths and by a path leading out of the project
    folder: the archive packs them under stable names (imzML beside its .ibd), its sample sheet maps them, and
    verify reruns the analysis from the archive alone."""
    import shutil

    import yaml

    workdir, _ = finished_run
    data = workdir / "results" / "demo" / "data" / "a01_T1"
    elsewhere, beside = tmp_path / "instrument" / "a01", tmp_path / "beside"
    project = tmp_path / "project"
    shutil.copytree(data, elsewhere)
    beside.mkdir()
    shutil.copy2(data / "he.ome.tif", beside / "he.ome.tif")
    project.mkdir()
    shutil.copytree(workdir / "config", project / "config")
    config = yaml.safe_load((project / "config" / "config.yaml").read_text())
    config["demo"]["enabled"] = False
    (project / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    rows = ["subject\tgroup\ttumour\tmodality\tpath\tmask",
            f"a01\tliposomal\tT1\tfluorescence\t{elsewhere}/./fluorescence.ome.tif\t",
            f"a01\tliposomal\tT1\tmsi\t{elsewhere / 'msi.imzML'}\t",
            "a01\tliposomal\tT1\the\t../beside/he.ome.tif\t",
            f"a01\tliposomal\tT1\tvolume\t{elsewhere / 'volume.nii.gz'}\t{elsewhere / 'volume_mask.nii.gz'}"]
    (project / "config" / "samples.tsv").write_text("\n".join(rows) + "\n")
    from conftest import nanohet as run_nanohet

    run_nanohet("run", "--cores", "2", cwd=project, check=True)
    res = nanohet("archive", "--name", "ext", "--include-inputs", "--workdir", str(project))
    assert res.returncode == 0, res.stderr
    m = _members(project / "results" / "archive" / "ext.tar.gz")
    sheet = m["ext/config/samples.tsv"].decode()
    assert str(tmp_path) not in sheet and "../" not in sheet
    imzml = next(n for n in m if n.endswith("/msi.imzML"))
    assert imzml.startswith("ext/inputs/external/") and imzml.replace(".imzML", ".ibd") in m
    assert m[imzml] == (elsewhere / "msi.imzML").read_bytes()
    assert any(n.startswith("ext/inputs/external/") and n.endswith("/he.ome.tif") for n in m)
    origins = m["ext/inputs/ORIGINS.tsv"].decode()
    assert str(elsewhere / "msi.ibd") in origins and str(beside / "he.ome.tif") in origins

    res = nanohet("verify", str(project / "results" / "archive" / "ext.tar.gz"))
    assert res.returncode == 0 and "VERIFIED" in res.stdout, res.stdout + res.stderr

    # without the inputs packed, verify looks for them where they were, and says which one is gone
    res = nanohet("archive", "--name", "ext_lean", "--workdir", str(project))
    assert res.returncode == 0, res.stderr
    (elsewhere / "msi.ibd").unlink()
    res = nanohet("verify", str(project / "results" / "archive" / "ext_lean.tar.gz"))
    assert res.returncode == 2 and f"not found at {elsewhere / 'msi.ibd'}" in res.stderr, res.stdout + res.stderr


def test_installed_package_runs_and_archives_a_project_without_a_checkout(finished_run, tmp_path):
    """The wheel carries the workflow: installed into a fresh prefix (no checkout beside it), its ``nanohet``
    finds the Snakefile under <prefix>/share/nanohet, sees the finished project as up to date (same code, same
    code versions), and archives it with the workflow and the package source that ran."""
    import shutil
    import sysconfig

    from conftest import REPO

    workdir, _ = finished_run
    wheel_dir, prefix = tmp_path / "wheel", tmp_path / "prefix"
    # built from a copy: an in-tree build would leave build/ and egg-info in the checkout
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", "results", "build", "dist", "tests",
                                                                "*.egg-info", ".snakemake", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheel_dir), str(source)],
                   check=True, capture_output=True)
    # installed as an installer lays a wheel out under a prefix (not with pip: pip would first uninstall the
    # nanohet of the running environment): the package into site-packages, <name>.data/data/ into the prefix
    site = Path(sysconfig.get_path("purelib", vars={"base": str(prefix), "platbase": str(prefix)}))
    with zipfile.ZipFile(next(wheel_dir.glob("nanohet-*.whl"))) as wheel:
        for member in wheel.namelist():
            parts = Path(member).parts
            if parts[0].endswith(".data"):
                assert parts[1] == "data", member  # the wheel carries data files only, no scripts or headers
                dest = prefix.joinpath(*parts[2:])
            else:
                dest = site / member
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(wheel.read(member))
            # installed before the analysis ran (Snakemake reruns a script rule whose script is newer than its
            # outputs, as after an upgrade)
            os.utime(dest, (1_600_000_000, 1_600_000_000))
    assert (site / "nanohet" / "cli.py").is_file() and (prefix / "share" / "nanohet" / "Snakefile").is_file()
    project = tmp_path / "project"
    shutil.copytree(workdir, project, symlinks=True, ignore=shutil.ignore_patterns("archive"))
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import nanohet, nanohet.cli as c; print(nanohet.__file__); "
                            "print(c.repo_root())"], capture_output=True, text=True, cwd=tmp_path, env=env, check=True)
    package, root = where.stdout.split()
    assert Path(package).is_relative_to(site) and Path(root) == prefix / "share" / "nanohet", where.stdout
    dry = subprocess.run([sys.executable, "-m", "nanohet.cli", "run", "--directory", str(project), "-n"],
                         capture_output=True, text=True, cwd=tmp_path, env=env)
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr, (dry.stdout + dry.stderr)[-6000:]
    res = subprocess.run([sys.executable, "-m", "nanohet.cli", "archive", "--name", "installed", "--workdir",
                          str(project)], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr
    names = _members(project / "results" / "archive" / "installed.tar.gz")
    for rel in ("workflow/Snakefile", "workflow/workflow/rules/msi.smk", "workflow/src/nanohet/cli.py",
                "workflow/config/config.yaml", "results/tables/cohort_metrics.tsv", "results/msi/calibration.tsv"):
        assert f"installed/{rel}" in names, rel
    assert names["installed/workflow/src/nanohet/cli.py"] == (REPO / "src" / "nanohet" / "cli.py").read_bytes()
    env_record = json.loads(names["installed/environment/environment.json"])
    assert env_record["git_commit"] is None
