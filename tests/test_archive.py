"""Reproducibility archive: pack a finished run, verify it by rerunning, detect tampering."""
import gzip
import io
import json
import subprocess
import sys
import tarfile

import pytest

from nanohet.repro.verify import safe_extract
from nanohet.errors import InputError

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
    assert any(line.endswith("a01_T1/msi.ibd") for line in checks) and len(checks) == 2 * 6
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
