"""Project folders (nanohet init), pins in one source, code versions of the steps."""
import subprocess
import sys

import pytest

from conftest import REPO


def test_init_writes_a_commented_config_and_an_empty_sheet(tmp_path):
    res = subprocess.run([sys.executable, "-m", "nanohet.cli", "init", str(tmp_path / "p")], capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr
    config = (tmp_path / "p" / "config" / "config.yaml").read_text()
    assert "enabled: false" in config and config.startswith("# nanohet project configuration")
    sheet = (tmp_path / "p" / "config" / "samples.tsv").read_text().splitlines()
    assert len(sheet) == 1 and sheet[0].split("\t")[:3] == ["subject", "group", "tumour"]
    again = subprocess.run([sys.executable, "-m", "nanohet.cli", "init", str(tmp_path / "p")], capture_output=True,
                           text=True)
    assert again.returncode == 2 and "exists; nothing was written" in again.stderr


def test_pins_agree():
    res = subprocess.run([sys.executable, str(REPO / "tools" / "pins.py"), "--check"], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout


def test_a_change_of_a_stage_changes_its_code_version(tmp_path, monkeypatch):
    import shutil

    import nanohet.provenance as prov

    copy = tmp_path / "nanohet"
    shutil.copytree(prov.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(prov, "PACKAGE", copy)
    before = {part: prov.code_version(part) for part in ("msi", "quantify")}
    (copy / "quantify" / "metrics.py").write_text((copy / "quantify" / "metrics.py").read_text() + "\n# changed\n")
    assert prov.code_version("quantify") != before["quantify"]
    assert prov.code_version("msi") == before["msi"]
    (copy / "settings.py").write_text((copy / "settings.py").read_text() + "\n# changed\n")  # core: every step
    assert prov.code_version("msi") != before["msi"]


LAYERS = {"io": 1, "msi": 2, "microscopy": 2, "registration": 2, "quantify": 2, "figures": 2, "demo": 2,
          "repro": 3, "steps": 3, "cli": 3, "project": 3}  # anything else: core (0)


@pytest.mark.parametrize("path", sorted(p.relative_to(REPO / "src" / "nanohet").as_posix()
                                        for p in (REPO / "src" / "nanohet").rglob("*.py")))
def test_no_upward_imports(path):
    """Core modules import nothing of the package's layers, io imports core, stages import io and core (and each
    other), the step layer and the commands import anything; nothing imports upward."""
    import ast

    parts = path.split("/")
    package = parts[0].removesuffix(".py")
    own = LAYERS.get(package, 0)
    for node in ast.walk(ast.parse((REPO / "src" / "nanohet" / path).read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 0:
            if not (node.module or "").startswith("nanohet."):
                continue
            target = node.module.split(".")[1]
        elif node.level == 1 and len(parts) > 1:
            continue  # within its own subpackage
        else:
            target = (node.module or "").split(".")[0]
        if target in ("", package):
            continue
        assert LAYERS.get(target, 0) <= own, f"{path} imports {node.module} (upward)"


def test_configuration_doc_is_generated_from_the_schema_and_settings():
    res = subprocess.run([sys.executable, str(REPO / "tools" / "configuration_doc.py"), "--check"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    text = (REPO / "docs" / "configuration.md").read_text()
    assert "| `min_dice` | number (≥ 0, ≤ 1) | `0.8` |" in text  # the schema's type, the settings' default


def test_readme_is_short_and_maps_the_repository_near_the_top():
    text = (REPO / "README.md").read_text()
    assert len(text.encode()) < 12_000
    assert text.index("## Repository map") < 3000


def test_validation_doc_numbers_come_from_the_tables(tmp_path):
    """tools/validation_doc.py writes the ranges of the result tables it is given, and docs/validation.md holds
    the blocks it fills."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("validation_doc", REPO / "tools" / "validation_doc.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "registration_error.tsv").write_text(
        "sample\tedge\tpoints\tn\tmedian_um\tp95_um\tmax_um\tmedian_px\tp95_px\tmoving_pixel_um\n"
        "a\tmsi->fluorescence\tdense_tissue_grid\t9\t6.0\t12.0\t15\t0.20\t0.40\t30\n"
        "b\tmsi->fluorescence\tdense_tissue_grid\t9\t9.0\t15.0\t18\t0.30\t0.50\t30\n")
    (tmp_path / "tables" / "metrics_vs_truth.tsv").write_text(
        "sample\tmodality\tanalyte\tmetric\trecovered\ttruth\tabs_error\trel_error\n"
        "a\tmsi\tdrug\tmean\t2.2\t2.0\t0.2\t0.1\nb\tmsi\tdrug\tmean\t3.15\t3.0\t0.15\t0.05\n"
        "a\tmsi\tdrug\tcoverage\t0.52\t0.5\t0.02\t0.04\nb\tmsi\tdrug\tcoverage\t0.59\t0.6\t0.01\t0.0167\n")
    block = tool.demo_block(tmp_path)
    assert "| msi->fluorescence (dense tissue grid) | 0.20-0.30 | 0.40-0.50 | 6.0-9.0 |" in block
    assert "| msi | drug | tissue | mean | 2-3 | 2.2-3.15 | 5.0-10.0 %, mean over |" in block
    assert "| msi | drug | tissue | coverage | 0.5-0.6 | 0.52-0.59 | 0.010-0.020 (absolute), mean over |" in block
    sweep = tmp_path / "s.tsv"
    sweep.write_text("seed\tconfig\tclass\tflagged\tseconds\n1\tmsi\tgood\tFalse\t10\n2\tmsi\tgross\tTrue\t20\n"
                     "3\tmsi\tgood\tTrue\t30\n")
    row = tool.sweep_block(sweep, sweep, "abc").splitlines()[-1]
    assert row == "| msi | good 1 / 1, gross 1 / 0 | good 1 / 1, gross 1 / 0 | 67% / 67% | 0 / 0 | 1 of 2 / 1 of 2 | 20 s |"
    (tmp_path / "tables" / "variance_vs_truth.tsv").write_text(
        "modality\tanalyte\tregion\tlevel\tconfigured_sd\tconfigured_share\trealised_share\testimated_share\t"
        "share_ci_low\tshare_ci_high\tconfigured_in_ci\trealised_in_ci\tn_units\tnote\n"
        "msi\tdrug\ttissue\tanimal\t0.25\t0.065\t0.034\t0.0331\t0\t0.28\tTrue\tTrue\t6\t\n"
        "msi\tdrug\ttissue\tpixel\t\t0.9\t0.93\t0.95\t0.68\t0.92\tTrue\tFalse\t999\t\n")
    rows = tool.variance_block(tmp_path).splitlines()[-2:]
    assert rows == ["| msi | drug | tissue | animal | 0.25 | 0.065 | 0.034 | 0.033 [0.000, 0.280] | configured, realised |",
                    "| msi | drug | tissue | pixel | - | 0.900 | 0.930 | 0.950 [0.680, 0.920] | configured |"]
    doc = (REPO / "docs" / "validation.md").read_text()
    for name in ("demo", "variance", "sweep"):
        assert f"<!-- BEGIN generated: {name} -->" in doc and f"<!-- END generated: {name} -->" in doc
    msi = tmp_path / "msi.tsv"
    msi.write_text("commit\tfile\tspectra\tibd_gb\ttargets\tplain_read_s\tmapped_read_s\tpyimzml_s\tpyimzml_parse_s\t"
                   "imzy_s\timzy_parse_s\tnanohet_s\tnanohet_parse_s\tnanohet_warmup_s\tnanohet_peak_mb\t"
                   "max_rel_diff_pyimzml\tmax_rel_diff_imzy\n"
                   "abc\tprocessed\t100000\t0.56\t50\t0.12\t0.10\t42.0\t4.8\t\t\t0.2\t5.0\t1.2\t480\t0\t\n")
    row = tool.msi_bench_block(msi).splitlines()[-1]
    assert row == ("| processed, 100,000 spectra, 0.56 GB | 0.12 s | 0.10 s | 42.0 s [4.80 s] | not installed | "
                   "0.20 s [5.00 s], 480 MB peak | 210x | - | 60 % / 50 % | pyimzML 0.0e+00 |")
    reg = tmp_path / "reg.tsv"
    reg.write_text("commit\tangle_deg\tmethod\tseconds\ttre_median_um\ttre_p95_um\nabc\t23.0\tnanohet\t12.34\t6.1\t9.87\n")
    assert tool.registration_bench_block(reg).splitlines()[-1] == "| 23° | nanohet | 12.3 s | 6.1 µm | 9.9 µm |"
    bench_doc = (REPO / "docs" / "benchmarks.md").read_text()
    for name in ("msi_bench", "registration_bench"):
        assert f"<!-- BEGIN generated: {name} -->" in bench_doc and f"<!-- END generated: {name} -->" in bench_doc
