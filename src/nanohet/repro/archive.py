"""Paper reproducibility archive: pack a finished analysis, and verify it by rerunning it.

An archive (``results/archive/<name>.tar.gz``) holds one top folder ``<name>/`` with

* ``workflow/``: the workflow source: the working tree without git-ignored files (commit and an
  uncommitted-change flag recorded in ``environment/``), or the source tree when not a git checkout;
* ``config/config.yaml`` (the resolved config) and ``config/samples.tsv``;
* ``inputs/CHECKSUMS.sha256`` (sha256 of every input file under its archived name: its path inside the
  project folder, or ``external/<folder hash>/<name>`` for an absolute or outside-the-project path),
  ``inputs/ORIGINS.tsv`` (where each input was) and, when asked, the inputs themselves; the archived sample
  sheet names the inputs by their archived names;
* ``environment/``: Python, OS, ``pip freeze``, git commit and state;
* ``results/``: every result (:func:`result_files`): tables, figures, images, transforms, grids, report;
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
# Result folders not packed: run logs and timings (they differ on every run), the archives themselves and
# the demo's generated inputs (checked by checksum instead).
NOT_ARCHIVED_DIRS = {"logs", "benchmarks", "archive", "demo"}
# Files that are caches of an input, not results (they hold zip timestamps).
NOT_ARCHIVED_NAMES = {"imzml_index.npz"}
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
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for item in SOURCE_ITEMS:
        src = repo / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=ignore)
        elif src.is_file():
            shutil.copy2(src, dest / item)
    if not (repo / "src").is_dir():
        # an installed package: the workflow from <prefix>/share/nanohet, the code that ran from the package
        shutil.copytree(Path(__file__).resolve().parents[1], dest / "src" / "nanohet", ignore=ignore)
    return {"git_commit": None, "uncommitted_changes": None}


def result_files(results: Path) -> list[Path]:
    """Every result file under ``results`` that an archive holds and a rerun must reproduce: tables, figures
    (PNG, SVG, PDF), images (OME-TIFF, NIfTI), grids, transforms, AnnData and OME-Zarr stores, the report.
    Left out: :data:`NOT_ARCHIVED_DIRS`, input caches, hidden files and the temporaries of atomic writes."""
    results = Path(results)
    out = []
    for p in sorted(results.rglob("*")):
        rel = p.relative_to(results)
        if (not p.is_file() or rel.parts[0] in NOT_ARCHIVED_DIRS or p.name in NOT_ARCHIVED_NAMES
                or any(part.startswith(".") for part in rel.parts) or ".partial" in p.name):
            continue
        out.append(p)
    return out


# sample-sheet columns that name input files (besides an imzML's .ibd)
FILE_COLUMNS = ("path", "mask", "landmarks", "regions")


def input_files(sheet, base: Path) -> list[Path]:
    """Every input file of a sample sheet (MSI .ibd, volume masks, landmark and drawn-region files included), as
    the sheet names them: relative to ``base`` or absolute."""
    from ..io.imzml import find_ibd
    from ..io.samplesheet import optional

    files = []
    for _, row in sheet.iterrows():
        p = Path(row["path"])
        files.append(p)
        if row["modality"] in ("msi", "msi_standard"):
            ibd = find_ibd(p if p.is_absolute() else base / p)
            files.append(ibd if p.is_absolute() else p.parent / ibd.name)
        for column in FILE_COLUMNS[1:]:
            if column in row and optional(row[column]):
                files.append(Path(row[column]))
    return list(dict.fromkeys(files))


def archived_name(path: Path, base: Path) -> str:
    """The stable name an input file has in an archive and its rerun: its path when it lies inside the project
    folder ``base``; else ``external/<12 hex digits of its folder's absolute path>/<file name>``, which keeps an
    imzML beside its .ibd and does not depend on where the archive is extracted."""
    full = (path if path.is_absolute() else base / path).resolve()
    if full.is_relative_to(base.resolve()):
        return full.relative_to(base.resolve()).as_posix()
    folder = hashlib.sha256(str(full.parent).encode()).hexdigest()[:12]
    return f"external/{folder}/{full.name}"


def _archived_sheet(sheet_path: Path, names: dict[str, str]) -> str:
    """The sample sheet with every input path replaced by its archived name (same columns and order)."""
    import csv
    import io

    with open(sheet_path, newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    header = rows[0]
    columns = [i for i, c in enumerate(header) if c in FILE_COLUMNS]
    for row in rows[1:]:
        for i in columns:
            if i < len(row) and row[i].strip() and str(Path(row[i].strip())) in names:
                row[i] = names[str(Path(row[i].strip()))]  # as input_files read it ("./a" and "a" alike)
    out = io.StringIO()
    csv.writer(out, delimiter="\t", lineterminator="\n").writerows(rows)
    return out.getvalue()


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
    results = result_files(workdir / "results")
    if not any(p.parent.name == "tables" for p in results):
        raise InputError(f"{workdir}/results has no tables: run the analysis before archiving it")
    name = out.name.removesuffix(".tar.gz")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / name
        (root / "workflow").mkdir(parents=True)
        git = _copy_source(repo, root / "workflow")
        (root / "config").mkdir()
        (root / "inputs").mkdir()
        lines, names, origins = [], {}, []
        for f in input_files(sheet, workdir):
            full = f if f.is_absolute() else workdir / f
            if not full.is_file():
                raise InputError(f"input file {f} (sample sheet {sheet_path}) is missing")
            stable = archived_name(f, workdir)
            names[str(f)] = stable
            lines.append(f"{sha256(full)}  {stable}")
            origins.append(f"{stable}\t{full.resolve()}")
            if include_inputs:
                dest = root / "inputs" / stable
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(full, dest)
        (root / "inputs" / "CHECKSUMS.sha256").write_text("\n".join(lines) + "\n")
        # where each input was when the analysis ran (verify looks there when the inputs are not packed)
        (root / "inputs" / "ORIGINS.tsv").write_text("archived_name\toriginal_path\n" + "\n".join(origins) + "\n")
        # the rerun reads the inputs under their archived names, through the archived sample sheet
        (root / "config" / "samples.tsv").write_text(_archived_sheet(sheet_path, names))
        (root / "config" / "config.yaml").write_text(
            yaml.safe_dump(dict(config, samples="config/samples.tsv"), sort_keys=False))

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
            fmt = {".tsv": "text/tab-separated-values", ".png": "image/png", ".html": "text/html", ".svg": "image/svg+xml",
                   ".pdf": "application/pdf", ".json": "application/json", ".tif": "image/tiff"}.get(p.suffix)
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
