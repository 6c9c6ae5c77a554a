"""Command line: ``nanohet init``, ``nanohet run``, ``nanohet features``, ``nanohet archive`` and ``nanohet verify``."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from .errors import InputError


def repo_root() -> Path:
    """The workflow this package belongs to: the checkout (src/nanohet -> repository root) for a source or
    editable install, else ``<prefix>/share/nanohet``, where a wheel installs the Snakefile, rules, schemas,
    scripts, default config and profiles (``[tool.setuptools.data-files]`` in pyproject.toml)."""
    package = Path(__file__).resolve().parent
    candidates = [package.parents[1]]
    # <prefix>/lib/pythonX.Y/site-packages/nanohet (POSIX) or <prefix>/Lib/site-packages/nanohet (Windows)
    candidates += [package.parents[k] / "share" / "nanohet" for k in (2, 3)]
    candidates += [Path(p) / "share" / "nanohet" for p in (sys.prefix, sys.exec_prefix)]
    for root in candidates:
        if (root / "Snakefile").is_file() and (root / "workflow" / "rules").is_dir():
            return root
    raise InputError("cannot find the nanohet workflow (Snakefile): looked in "
                     + ", ".join(str(c) for c in dict.fromkeys(candidates))
                     + "; install nanohet from its checkout or its wheel (pip install <checkout or wheel>)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="nanohet", description="nanohet: project folders, runs, reproducibility")
    sub = parser.add_subparsers(dest="command", required=True)
    i = sub.add_parser("init", help="create a project folder with a commented config and an empty sample sheet")
    i.add_argument("folder")
    i.add_argument("--force", action="store_true", help="overwrite an existing config or sample sheet")
    r = sub.add_parser("run", help="run the workflow on the project in the current folder (arguments go to snakemake)")
    r.add_argument("--directory", default=".", help="project folder (default: current folder)")
    a = sub.add_parser("archive", help="pack a finished analysis into results/archive/<name>.tar.gz")
    a.add_argument("--name", default="nanohet-analysis", help="archive name (default: nanohet-analysis)")
    a.add_argument("--workdir", default=".", help="analysis folder (default: current folder)")
    a.add_argument("--configfile", default="config/config.yaml")
    a.add_argument("--include-inputs", action="store_true", help="also pack the input files themselves")
    f = sub.add_parser("features", help="the workflow's distribution and spatial measures of any image inside a mask "
                       "or label image, as a tidy table (OME-TIFF/TIFF sections; NIfTI, NRRD, MHA, DICOM volumes)")
    f.add_argument("image")
    f.add_argument("mask", help="mask or label image on the image's grid (0 = background; one row set per label)")
    f.add_argument("--channel", help="channel of a multi-channel OME-TIFF")
    f.add_argument("--unit", default="image units", help="unit of the image's values (for the table)")
    f.add_argument("--config", help="a nanohet config whose quantify section sets the bins and spatial scales")
    f.add_argument("--bins", type=int, help="grey levels of the histogram features (default: the config's, 32)")
    f.add_argument("--texture-levels", type=int,
                   help="grey levels of the texture features and DHI (default: the config's, 32)")
    f.add_argument("--out", help="write the table here (TSV) instead of printing it")
    c = sub.add_parser("check", help="check every input of a study before running it (metadata only): files, "
                       "pixel sizes, channels, m/z ranges, masks; lists every problem at once")
    c.add_argument("--configfile", default="config/config.yaml", help="the study's config (default: "
                   "config/config.yaml)")
    v = sub.add_parser("verify", help="rerun an archive and compare every result with it")
    v.add_argument("archive")
    v.add_argument("--cores", type=int, default=2)
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "run":
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    try:
        if args.command == "init":
            from .project import init_project

            for path in init_project(args.folder, force=args.force):
                print(f"wrote {path}")
            print(f"next: edit {Path(args.folder) / 'config'}, then: cd {args.folder} && nanohet run -n")
            return 0
        if args.command == "run":
            return run_workflow(Path(args.directory), rest)
        if args.command == "features":
            return features(args)
        if args.command == "check":
            return check(args)
        from .repro.archive import create_archive
        from .repro.verify import verify_archive

        if args.command == "archive":
            workdir = Path(args.workdir)
            out = workdir / "results" / "archive" / f"{args.name}.tar.gz"
            create_archive(workdir, repo_root(), out, args.configfile, args.include_inputs)
            print(f"wrote {out}")
            return 0
        report = verify_archive(args.archive, cores=args.cores)
        print(report.text())
        return 0 if report.ok else 1
    except InputError as exc:
        print(f"nanohet: {exc}", file=sys.stderr)
        return 2


def check(args) -> int:
    """``nanohet check``: :func:`nanohet.io.check.check_inputs` of a study's config and sample sheet."""
    import yaml

    from .io.check import check_inputs, report
    from .io.samplesheet import load_sample_sheet
    from .settings import from_config

    config = from_config(yaml.safe_load(Path(args.configfile).read_text()) or {})
    sheet = load_sample_sheet(config.samples, repo_root() / "workflow" / "schemas" / "samples.schema.yaml")
    if config.demo.enabled:
        print("demo.enabled is true: the inputs are generated by the run; nothing to check")
        return 0
    problems = check_inputs(sheet, config)
    if problems:
        print(report(problems), file=sys.stderr)
        return 1
    print(f"{len(sheet)} inputs checked: no problem")
    return 0


def features(args) -> int:
    """``nanohet features``: :func:`nanohet.quantify.features.image_features` of one image and mask."""
    import yaml

    from .atomic import write_table
    from .memory import reuse_freed_memory
    from .quantify.features import image_features, read_image_and_labels
    from .settings import QuantifySettings

    reuse_freed_memory()  # as the workflow's steps

    quantify = QuantifySettings()
    if args.config:
        quantify = QuantifySettings.coerce((yaml.safe_load(Path(args.config).read_text()) or {}).get("quantify", {}))
    if args.bins is not None:
        quantify = QuantifySettings.coerce({**quantify.to_dict(), "histogram_bins": args.bins})
    if args.texture_levels is not None:
        quantify = QuantifySettings.coerce({**quantify.to_dict(), "texture_levels": args.texture_levels})
    values, labels, spacing, length_unit = read_image_and_labels(args.image, args.mask, args.channel)
    try:
        table = image_features(values, labels, spacing, length_unit, quantify, args.unit)
    except InputError as exc:
        raise InputError(f"{args.image} with {args.mask}: {exc}") from None
    table.insert(0, "image", str(args.image))
    if args.out:
        write_table(table, args.out)
        print(f"wrote {args.out} ({len(table)} rows)")
    else:
        print(table.to_csv(sep="\t", index=False), end="")
    return 0


def run_workflow(folder: Path, snakemake_args: list[str]) -> int:
    """Run the workflow on the project in ``folder`` (its ``config/config.yaml``); returns snakemake's exit code."""
    config = folder / "config" / "config.yaml"
    if not config.is_file():
        raise InputError(f"{config}: no project config here; create a project with: nanohet init <folder>")
    args = list(snakemake_args)
    if not any(a in ("--cores", "-c", "--jobs", "-j", "--profile") or a.startswith(("--cores=", "-c"))
               for a in args):
        args += ["--cores", "all"]
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(repo_root() / "Snakefile"),
           "--directory", str(folder.resolve()), "--configfile", str(config.resolve()), *args]
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
