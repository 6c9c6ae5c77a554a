"""Verify a reproducibility archive: check it against its MANIFEST, rerun it, compare every result."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import InputError
from .archive import NOT_COMPARED, VOLATILE_COLUMNS, result_files, sha256


@dataclass
class VerifyReport:
    matched: list[str] = field(default_factory=list)
    differed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    not_compared: list[str] = field(default_factory=list)
    tampered: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.differed or self.missing or self.tampered or self.unlisted or self.extra or self.problems)

    def text(self) -> str:
        lines = [f"PROBLEM: {p}" for p in self.problems]
        for label, items in (("TAMPERED (archive content differs from its MANIFEST)", self.tampered),
                             ("NOT IN THE MANIFEST (the manifest cannot vouch for it)", self.unlisted),
                             ("PRODUCED by the rerun but not in the archive", self.extra),
                             ("DIFFERS from the rerun", self.differed), ("MISSING in the rerun", self.missing),
                             ("not compared (records run dates and times)", self.not_compared)):
            lines += [f"{label}: {p}" for p in items]
        lines.append(f"{len(self.matched)} result files match, {len(self.differed)} differ, "
                     f"{len(self.missing)} missing, {len(self.tampered)} tampered")
        lines.append("VERIFIED: the rerun reproduces every archived result" if self.ok else "NOT VERIFIED")
        return "\n".join(lines)


def same_result(a: Path, b: Path) -> bool:
    """Whether two result files are the same: identical bytes, or TSV tables differing only in run times."""
    a, b = Path(a), Path(b)
    if a.read_bytes() == b.read_bytes():
        return True
    return a.suffix == ".tsv" and same_table_but_volatile(a, b)


def same_table_but_volatile(a: Path, b: Path) -> bool:
    """Whether two TSV files are identical, text cell by text cell, outside :data:`VOLATILE_COLUMNS`."""
    rows_a, rows_b = Path(a).read_text().splitlines(), Path(b).read_text().splitlines()
    if len(rows_a) != len(rows_b) or not rows_a or rows_a[0] != rows_b[0]:
        return False
    header = rows_a[0].split("\t")
    keep = [i for i, name in enumerate(header) if name not in VOLATILE_COLUMNS]
    if len(keep) == len(header):
        return False  # nothing volatile: the bytes had to match
    for ra, rb in zip(rows_a[1:], rows_b[1:]):
        ca, cb = ra.split("\t"), rb.split("\t")
        if len(ca) != len(header) or len(cb) != len(header) or any(ca[i] != cb[i] for i in keep):
            return False
    return True


def safe_extract(archive: str | os.PathLike, dest: Path) -> Path:
    """Extract a tar.gz refusing absolute paths, ``..``, links and special files; return the top folder."""
    dest = Path(dest).resolve()
    try:
        tar = tarfile.open(archive, "r:gz")
    except (OSError, tarfile.TarError) as exc:
        raise InputError(f"{archive}: not a readable .tar.gz ({exc})") from exc
    with tar:
        members = tar.getmembers()
        tops = set()
        for m in members:
            p = Path(m.name)
            if p.is_absolute() or ".." in p.parts:
                raise InputError(f"{archive}: refusing member {m.name!r} (absolute path or '..')")
            if not (m.isfile() or m.isdir()):
                raise InputError(f"{archive}: refusing member {m.name!r} (links and special files are not allowed)")
            if not (dest / p).resolve().is_relative_to(dest):
                raise InputError(f"{archive}: member {m.name!r} would land outside the extraction folder")
            tops.add(p.parts[0])
        if len(tops) != 1:
            raise InputError(f"{archive}: expected one top folder, found {sorted(tops)}")
        tar.extractall(dest, members=members, filter="data")
    return dest / tops.pop()


def verify_archive(archive: str | os.PathLike, cores: int = 2, workdir: str | os.PathLike | None = None,
                   log=print) -> VerifyReport:
    """Extract ``archive``, rerun its workflow in a temporary folder and compare all results.

    The archive's own MANIFEST is checked first (a changed file is reported as tampered, and an archive that
    fails this check is not rerun); then the
    workflow runs from the archived source with the archived config and sample sheet; inputs come
    from the archive when included, else from their recorded paths (checked against the archived
    checksums). Every archived result file must be byte-identical to the rerun's, except the
    run-time columns of tables (:data:`VOLATILE_COLUMNS`), which are left out of the comparison.
    """
    report = VerifyReport()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = safe_extract(archive, tmp / "archive")
        manifest = root / "MANIFEST.sha256"
        if not manifest.is_file():
            raise InputError(f"{archive}: no MANIFEST.sha256")
        entries = _manifest(root, manifest, archive)
        for rel, digest in entries.items():
            f = root / rel
            if not f.is_file() or sha256(f) != digest:
                report.tampered.append(rel)
        held = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {"MANIFEST.sha256"}
        report.unlisted = sorted(held - set(entries))
        if not any(rel.startswith("results/") and rel not in NOT_COMPARED for rel in entries):
            report.problems.append("the archive holds no result to compare")
        log(f"MANIFEST: {len(entries)} files, {len(report.tampered)} changed since the archive was made, "
            f"{len(report.unlisted)} not listed")
        if report.tampered or report.unlisted or report.problems:
            return report  # a changed archive or an incomplete manifest vouches for nothing: no rerun

        run = Path(workdir) if workdir else tmp / "rerun"
        run.mkdir(parents=True, exist_ok=True)
        shutil.copytree(root / "config", run / "config", dirs_exist_ok=True)
        config = yaml.safe_load((root / "config" / "config.yaml").read_text())
        checks = (root / "inputs" / "CHECKSUMS.sha256").read_text().splitlines()
        for line in checks:
            _inside(run, line.split("  ", 1)[-1], "inputs/CHECKSUMS.sha256", archive)
        demo = bool(config.get("demo", {}).get("enabled"))
        demo_dir = str(config.get("demo", {}).get("data_dir", "results/demo/data")).rstrip("/") + "/"

        def generated(rel: str) -> bool:  # made again by the demo's rules, not copied
            return demo and rel.startswith(demo_dir)

        origins = _origins(root)
        for line in checks:  # every input the run does not make itself (all of them outside the demo)
            digest, rel = line.split("  ", 1)
            if not generated(rel):
                src = root / "inputs" / rel
                if not src.is_file():  # not packed: where it was when the analysis ran
                    src = Path(origins.get(rel, rel))
                if not src.is_file() or sha256(src) != digest:
                    raise InputError(f"input {rel} is not in the archive and not found at {src} with the "
                                     "recorded checksum")
                (run / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, run / rel)
        cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(root / "workflow" / "Snakefile"),
               "--directory", str(run), "--configfile", str(run / "config" / "config.yaml"), "--cores", str(cores)]
        log("rerunning: " + " ".join(cmd))
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"the rerun failed:\n{res.stderr[-4000:]}")
        if demo:
            for line in checks:  # the demo regenerates its inputs: they must be the same bytes
                digest, rel = line.split("  ", 1)
                if generated(rel) and sha256(run / rel) != digest:
                    report.differed.append(f"inputs/{rel} (regenerated demo input)")
        for rel in sorted(entries):
            if not rel.startswith("results/"):
                continue
            if rel in NOT_COMPARED:
                report.not_compared.append(rel)
                continue
            produced = run / rel
            if not produced.is_file():
                report.missing.append(rel)
            elif rel in report.tampered:
                report.differed.append(rel)
            elif same_result(root / rel, produced):  # the archived copy matches its MANIFEST (not tampered)
                report.matched.append(rel)
            else:
                report.differed.append(rel)
        produced = {p.relative_to(run).as_posix() for p in result_files(run / "results")}
        report.extra = sorted(produced - set(entries))
    return report


def _origins(root: Path) -> dict[str, str]:
    """``{archived name: original path}`` of ``inputs/ORIGINS.tsv`` (empty for older archives)."""
    path = root / "inputs" / "ORIGINS.tsv"
    if not path.is_file():
        return {}
    lines = path.read_text().splitlines()[1:]
    return dict(line.split("\t", 1) for line in lines if "\t" in line)


def _manifest(root: Path, manifest: Path, archive) -> dict[str, str]:
    """``{path: sha256}`` of the archive's MANIFEST; every path must stay inside the archive."""
    entries = {}
    for i, line in enumerate(manifest.read_text().splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64:
            raise InputError(f"{archive}: MANIFEST.sha256 line {i} is not '<sha256>  <path>'")
        _inside(root, rel, "MANIFEST.sha256", archive)
        entries[rel] = digest
    return entries


def _inside(folder: Path, rel: str, listing: str, archive) -> Path:
    """``folder / rel``, refused when ``rel`` is absolute or leads outside ``folder``."""
    path = Path(rel)
    target = (folder / path).resolve()
    if path.is_absolute() or ".." in path.parts or not target.is_relative_to(Path(folder).resolve()):
        raise InputError(f"{archive}: {listing} names {rel!r}, a path outside the archive's folder; refused")
    return target
