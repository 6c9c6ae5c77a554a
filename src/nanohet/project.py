"""A user's own project folder: ``nanohet init`` writes a commented config and an empty sample sheet."""

from __future__ import annotations

from pathlib import Path

from .errors import InputError

SHEET_HEADER = (
    "subject\tgroup\ttumour\tsection\ttimepoint\tmodality\tpath\tpixel_size\tmask\tchannels\tlandmarks\tanalyte"
    "\tconcentration\n"
)


def project_config(repo: Path) -> str:
    """The project config: the repository's default config with the demo switched off and the sample sheet
    pointing into the project."""
    text = (repo / "config" / "config.yaml").read_text()
    text = text.replace("  enabled: true\n", "  enabled: false            # true: analyse the simulated demo cohort\n", 1)
    return ("# nanohet project configuration (created by `nanohet init`). Every key is documented in\n"
            "# docs/configuration.md of the nanohet repository; keys you leave out take the defaults listed there.\n"
            "# Paths are relative to this project folder.\n" + text)


def init_project(folder: str | Path, force: bool = False) -> list[Path]:
    """Create ``folder/config/config.yaml`` and an empty ``folder/config/samples.tsv``.

    Raises
    ------
    InputError
        When either file exists and ``force`` is false (nothing is overwritten).
    """
    from .cli import repo_root

    folder = Path(folder)
    config, sheet = folder / "config" / "config.yaml", folder / "config" / "samples.tsv"
    existing = [p for p in (config, sheet) if p.exists()]
    if existing and not force:
        raise InputError(f"{existing[0]} exists; nothing was written (use --force to overwrite)")
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(project_config(repo_root()), encoding="utf-8")
    sheet.write_text(SHEET_HEADER, encoding="utf-8")
    return [config, sheet]
