"""Write the demo cohorts' sample sheets from nanohet.demo.design (tests/test_demo_design.py checks they agree).

    python tools/demo_sheets.py        # config/samples.tsv (default demo) and config/samples_full.tsv (larger)
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from nanohet.demo.design import hierarchical_sheet, sheet_text  # noqa: E402

# (file, design): the default demo (24 sections of small tumours) and the larger demo of config/demo_full.yaml
SHEETS = {
    "config/samples.tsv": dict(animals=3, tumours=2, sections=2),
    "config/samples_full.tsv": dict(animals=4, tumours=2, sections=3),
}


def main() -> None:
    for name, design in SHEETS.items():
        (ROOT / name).write_text(sheet_text(hierarchical_sheet(**design)))
        print(f"wrote {name}: {design}")


if __name__ == "__main__":
    main()
