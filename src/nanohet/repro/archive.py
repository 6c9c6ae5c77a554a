"""Paper reproducibility archive: pack a finished analysis, and verify it by rerunning it.

An archive (``results/archive/<name>.tar.gz``) holds one top folder ``<name>/`` with

* ``workflow/``: the workflow source: the working tree without git-ignored files (commit and an
  uncommitted-change flag recorded in ``environment/``), or the source tree when not a git checkout;
* ``config/config.yaml`` (the resolved config) and ``config/samples.tsv``;
* ``inputs/CHECKSUMS.sha256`` (sha256 of every input file) and, when asked, the inputs themselves;
* ``environment/``: Python, OS, ``pip freeze``, git commit and state;
* ``results/``: the tables, figures, per-sample metrics and the HTML report;
* ``MANIFEST.sha256``: sha256 of every other file of the archive;
* ``ro-crate-metadata.json``: RO-Crate metadata following the Workflow Run Crate profile
  (https://w3id.org/ro/wfrun/workflow/0.5).

:func:`nanohet.repro.verify.verify_archive` extracts it, reruns the workflow in a temporary directory and
compares every archived result with the rerun.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import yaml

from ..atomic import atomic_path
from ..errors import InputError

SOURCE_ITEMS = ["Snakefile", "workflow", "src", "config", "envs", "profiles", "requirements", "pyproject.toml",
                "README.md", "LICENSE", "benchmarks"]
RESULT_GLOBS = ["tables/*.tsv", "figures/*.png", "figures/samples/*.png", "quantify/*/*.tsv",
                "registration/*/*.tsv", "registration/*/*.tfm", "validation/*/*.tsv", "report.html"]
# Files whose content records when and how long the run took: archived, but not compared on verify.
NOT_COMPARED = {"results/report.html"}
# Table columns that record how long a step took: compared everywhere else, never between reruns.
VOLATILE_COLUMNS = {"run_time_s"}
WRC_PROFILES = ["https://w3id.org/ro/wfrun/process/0.5", "https://w3id.org/ro/wfrun/workflow/0.5",
                "https://w3id.org/workflowhub/workflow-ro-crate/1.0"]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _git(repo: Path, *args) -> str | None:
    try:
        res = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
        return res.stdout
    except (OSError, subprocess.CalledProcessError):
        return None


def _copy_source(repo: Path, dest: Path) -> dict:
    commit = _git(repo, "rev-parse", "HEAD")
    tracked = _git(repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    if commit and tracked is not None:
        # the working tree minus git-ignored files: the code that produced the results, with
        # uncommitted edits and new files (recorded as such), without results/ or .venv/
        for rel in filter(None, tracked.split("\0")):
            src = repo / rel
            if src.is_file():
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / rel)
        dirty = bool((_git(repo, "status", "--porcelain") or "").strip())
        return {"git_commit": commit.strip(), "uncommitted_changes": dirty}
    for item in SOURCE_ITEMS:
        src = repo / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif src.is_file():
            shutil.copy2(src, dest / item)
    return {"git_commit": None, "uncommitted_changes": None}


def input_files(sheet, base: Path) -> list[Path]:
    """Every input file of a sample sheet (MSI .ibd and volume masks included), relative to ``base``."""
    from ..io.imzml import find_ibd
    from ..io.samplesheet import optional

    files = []
    for _, row in sheet.iterrows():
        p = Path(row["path"])
        files.append(p)
        if row["modality"] == "msi":
            files.append(find_ibd(base / p).relative_to(base.resolve()) if not p.is_absolute() else find_ibd(p))
        if optional(row["mask"]):
            files.append(Path(row["mask"]))
    return files


def create_archive(workdir: str | os.PathLike, repo: str | os.PathLike, out: str | os.PathLike,
                   configfile: str = "config/config.yaml", include_inputs: bool = False) -> Path:
    """Pack a finished analysis in ``workdir`` into ``out`` (.tar.gz).

    Raises
    ------
    InputError
        When the analysis has not been run (no results tables) or an input file is missing.
    """
    from .. import __version__
    from ..io.samplesheet import load_sample_sheet

    workdir, repo, out = Path(workdir).resolve(), Path(repo).resolve(), Path(out)
    config = yaml.safe_load((workdir / configfile).read_text())
    sheet_path = workdir / config["samples"]
    sheet = load_sample_sheet(sheet_path, repo / "workflow" / "schemas" / "samples.schema.yaml")
    results = sorted({p for g in RESULT_GLOBS for p in (workdir / "results").glob(g)})
    if not any(p.parent.name == "tables" for p in results):
        raise InputError(f"{workdir}/results has no tables: run the analysis before archiving it")
    name = out.name.removesuffix(".tar.gz")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / name
        (root / "workflow").mkdir(parents=True)
        git = _copy_source(repo, root / "workflow")
        (root / "config").mkdir()
        (root / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        shutil.copy2(sheet_path, root / "config" / "samples.tsv")

        (root / "inputs").mkdir()
        lines = []
        for f in input_files(sheet, workdir):
            full = workdir / f
            if not full.is_file():
                raise InputError(f"input file {f} (sample sheet {sheet_path}) is missing")
            lines.append(f"{sha256(full)}  {f.as_posix()}")
            if include_inputs:
                dest = root / "inputs" / f
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(full, dest)
        (root / "inputs" / "CHECKSUMS.sha256").write_text("\n".join(lines) + "\n")

        (root / "environment").mkdir()
        freeze = subprocess.run([sys.executable, "-m", "pip", "freeze"], capture_output=True, text=True).stdout
        (root / "environment" / "pip-freeze.txt").write_text(freeze)
        env = {"nanohet": __version__, "python": platform.python_version(), "platform": platform.platform(),
               "machine": platform.machine(), **git}
        (root / "environment" / "environment.json").write_text(json.dumps(env, indent=2) + "\n")

        for p in results:
            dest = root / p.relative_to(workdir)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, dest)

        _write_crate(root, name, env, config, sheet, include_inputs)
        files = sorted(p for p in root.rglob("*") if p.is_file())
        manifest = "".join(f"{sha256(p)}  {p.relative_to(root).as_posix()}\n" for p in files)
        (root / "MANIFEST.sha256").write_text(manifest)
        with atomic_path(out) as tmp_out:
            _write_tar(Path(tmp), name, tmp_out)
    return out


def _write_crate(root: Path, name: str, env: dict, config: dict, sheet, include_inputs: bool) -> None:
    from rocrate.rocrate import ROCrate

    crate = ROCrate()
    crate.name = f"nanohet analysis {name}"
    crate.description = ("Workflow Run Crate of a nanohet analysis (Snakemake): workflow source, configuration, "
                         "input checksums, environment and results.")
    crate.root_dataset["license"] = "MIT"
    crate.root_dataset["conformsTo"] = [{"@id": p} for p in WRC_PROFILES]
    wf = crate.add_workflow(root / "workflow" / "Snakefile", dest_path="workflow/Snakefile", main=True,
                            lang="snakemake", properties={"name": "nanohet", "version": env["nanohet"]})
    objects = [crate.add_file(root / "config" / "config.yaml", dest_path="config/config.yaml",
                              properties={"name": "resolved configuration", "encodingFormat": "application/yaml"}),
               crate.add_file(root / "config" / "samples.tsv", dest_path="config/samples.tsv",
                              properties={"name": "sample sheet", "encodingFormat": "text/tab-separated-values"}),
               crate.add_file(root / "inputs" / "CHECKSUMS.sha256", dest_path="inputs/CHECKSUMS.sha256",
                              properties={"name": "sha256 of every input file"})]
    results = []
    for p in sorted((root / "results").rglob("*")):
        if p.is_file():
            rel = p.relative_to(root).as_posix()
            fmt = {".tsv": "text/tab-separated-values", ".png": "image/png", ".html": "text/html"}.get(p.suffix)
            props = {"encodingFormat": fmt} if fmt else {}
            results.append(crate.add_file(p, dest_path=rel, properties=props))
    crate.add_action(wf, identifier="#nanohet-run", object=objects, result=results,
                     properties={"name": f"nanohet run {name}", "@type": "CreateAction",
                                 "description": f"git commit {env.get('git_commit')}"})
    crate.metadata.write(root)


def _write_tar(base: Path, name: str, out: Path) -> None:
    """Deterministic tar.gz: sorted entries, fixed owner and mtime, no gzip timestamp."""
    import gzip

    with open(out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for p in sorted((base / name).rglob("*")):
            info = tar.gettarinfo(str(p), arcname=p.relative_to(base).as_posix())
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if info.isfile():
                with open(p, "rb") as fh:
                    tar.addfile(info, fh)
            elif info.isdir():
                tar.addfile(info)
