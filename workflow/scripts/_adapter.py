"""The one adapter of every rule script: make the package importable, run the rule's step.

Snakemake puts this folder on the script's path; each script is ``run(snakemake, "<module>", "<step>")``,
which calls ``nanohet.steps.<module>.<step>`` with the rule's named inputs, params, wildcards and outputs
(see :func:`nanohet.steps.run_rule`).
"""
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
if SRC.is_dir() and str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))  # nanohet from this checkout, also without pip install (e.g. --sdm conda)


def run(smk, module: str, step: str):
    """Run the step; a bad input (``InputError``) ends the job with one line on the terminal, its message and
    the log to read (the log holds the traceback); any other error keeps its traceback."""
    from nanohet.errors import InputError
    from nanohet.steps import run_rule

    try:
        return run_rule(smk, module, step)
    except InputError as exc:
        raise SystemExit(f"nanohet: {exc} (log: {smk.log[0]})") from None
