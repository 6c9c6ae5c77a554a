"""Command line: ``nanohet archive`` and ``nanohet verify``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import InputError


def _repo_root() -> Path:
    """The workflow checkout this package belongs to (src/nanohet -> repository root)."""
    here = Path(__file__).resolve().parents[2]
    if (here / "Snakefile").is_file():
        return here
    raise InputError("cannot find the nanohet workflow (Snakefile) next to the installed package; "
                     "use an editable install from a checkout (pip install -e .)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="nanohet", description="nanohet reproducibility tools")
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("archive", help="pack a finished analysis into results/archive/<name>.tar.gz")
    a.add_argument("--name", default="nanohet-analysis", help="archive name (default: nanohet-analysis)")
    a.add_argument("--workdir", default=".", help="analysis folder (default: current folder)")
    a.add_argument("--configfile", default="config/config.yaml")
    a.add_argument("--include-inputs", action="store_true", help="also pack the input files themselves")
    v = sub.add_parser("verify", help="rerun an archive and compare every result with it")
    v.add_argument("archive")
    v.add_argument("--cores", type=int, default=2)
    args = parser.parse_args(argv)
    from .archive import create_archive, verify_archive

    try:
        if args.command == "archive":
            workdir = Path(args.workdir)
            out = workdir / "results" / "archive" / f"{args.name}.tar.gz"
            create_archive(workdir, _repo_root(), out, args.configfile, args.include_inputs)
            print(f"wrote {out}")
            return 0
        report = verify_archive(args.archive, cores=args.cores)
        print(report.text())
        return 0 if report.ok else 1
    except InputError as exc:
        print(f"nanohet: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
