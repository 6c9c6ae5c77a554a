import pytest
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from conftest import REPO
import yaml

from nanohet.errors import InputError
from nanohet.io.samplesheet import check_demo_paths, load_sample_sheet

SCHEMA = REPO / "workflow" / "schemas" / "samples.schema.yaml"
HEADER = "subject\tgroup\ttumour\tmodality\tpath\tpixel_size\tmask\tchannels\n"


def _sheet(tmp_path, rows):
    p = tmp_path / "samples.tsv"
    p.write_text(HEADER + "".join("\t".join(r) + "\n" for r in rows))
    return p


GOOD = [["m1", "a", "T1", "fluorescence", "f.ome.tif", "", "", ""],
        ["m1", "a", "T1", "msi", "m.imzML", "20", "", ""]]


def test_good_sheet(tmp_path):
    df = load_sample_sheet(_sheet(tmp_path, GOOD), SCHEMA)
    assert list(df["sample"].unique()) == ["m1_T1"]
    assert df.loc[df.modality == "msi", "pixel_size"].iloc[0] == 20.0


def test_any_mix_of_modalities(tmp_path):
    """A study is any mix per sample: MSI only, fluorescence only, a volume only, a CT with its mask."""
    rows = [["m1", "a", "T1", "msi", "m.imzML", "20", "", ""],
            ["m2", "a", "T1", "fluorescence", "f.ome.tif", "", "", ""],
            ["m3", "b", "T1", "volume", "v.nii.gz", "", "v_mask.nii.gz", ""],
            ["m4", "b", "T1", "ct", "c.nii.gz", "", "c_mask.nii.gz", ""]]
    df = load_sample_sheet(_sheet(tmp_path, rows), SCHEMA)
    assert dict(zip(df["sample"], df["modality"])) == {"m1_T1": "msi", "m2_T1": "fluorescence", "m3_T1": "volume",
                                                      "m4_T1": "ct"}


@pytest.mark.parametrize("rows, message", [
    ([GOOD[0], ["m1", "a", "T1", "msi", "m.imzML", "abc", "", ""]], "row 3.*pixel_size 'abc' is not a number"),
    ([GOOD[0], ["m1", "a", "T1", "maldi", "m.imzML", "", "", ""]], "row 3.*column modality.*'maldi'"),
    ([GOOD[0], ["m_1", "a", "T1", "msi", "m.imzML", "", "", ""]], "row 3.*column subject"),
    ([["m1", "a", "T1", "he", "h.ome.tif", "", "", ""]], r"m1_T1 has only he row\(s\): nothing is measured"),
    ([["m1", "a", "T1", "ct", "c.nii.gz", "", "", ""]], r"m1_T1 has only ct row\(s\)"),
    ([GOOD[1], ["m1", "a", "T1", "he", "h.ome.tif", "", "", ""]], "m1_T1 has an he row but no fluorescence row"),
    (GOOD + [GOOD[1]], "more than one msi"),
    (GOOD + [["m1", "a", "T1", "volume", "v.nii.gz", "", "", ""]], "needs a tumour mask"),
    (GOOD + [["m1", "b", "T2", "fluorescence", "x", "", "", ""], ["m1", "b", "T2", "msi", "y", "", "", ""]],
     "several groups"),
    ([GOOD[0], ["m1", "a", "T1", "msi", "m.imzML", "nan", "", ""]], "row 3.*pixel_size nan is not a finite number"),
    ([GOOD[0], ["m1", "a", "T1", "msi", "m.imzML", "inf", "", ""]], "row 3.*pixel_size inf is not a finite number"),
    (GOOD + [["M1", "a", "T1", "fluorescence", "x", "", "", ""], ["M1", "a", "T1", "msi", "y", "", "", ""]],
     r"sample ids \['M1_T1', 'm1_T1'\] differ only in upper/lower case"),
])
def test_bad_rows_are_named(tmp_path, rows, message):
    with pytest.raises(InputError, match=message):
        load_sample_sheet(_sheet(tmp_path, rows), SCHEMA)


def test_demo_paths_must_match(tmp_path):
    df = load_sample_sheet(_sheet(tmp_path, GOOD), SCHEMA)
    with pytest.raises(InputError, match="demo.enabled is true"):
        check_demo_paths(df, "results/demo/data")


def test_shipped_config_and_sheet_are_valid():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    df = load_sample_sheet(REPO / "config" / "samples.tsv", SCHEMA)
    check_demo_paths(df, config["demo"]["data_dir"])
    assert df["group"].nunique() >= 2 and df.groupby("group")["subject"].nunique().min() >= 3


@pytest.mark.parametrize("key, value, message", [
    (("msi", "normalisation"), "totalion", "normalisation"),
    (("registration", "transform"), "bspline-ish", "transform"),
    (("msi", "analytes"), [{"name": "dox", "mz": -1, "ppm": 5}], "mz"),
])
def test_bad_config_values_name_the_key(key, value, message):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config[key[0]][key[1]] = value
    with pytest.raises(WorkflowError, match=message):
        validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))


def test_landmarks_column(tmp_path):
    p = tmp_path / "samples.tsv"
    p.write_text(HEADER.rstrip("\n") + "\tlandmarks\n"
                 "m1\ta\tT1\tfluorescence\tf.ome.tif\t\t\t\t\n"
                 "m1\ta\tT1\tmsi\tm.imzML\t\t\t\tlm/msi.csv\n")
    df = load_sample_sheet(p, SCHEMA)
    assert df.loc[df.modality == "msi", "landmarks"].iloc[0] == "lm/msi.csv"
    p.write_text(HEADER.rstrip("\n") + "\tlandmarks\n"
                 "m1\ta\tT1\tfluorescence\tf.ome.tif\t\t\t\tlm/f.csv\n"
                 "m1\ta\tT1\tmsi\tm.imzML\t\t\t\t\n")
    with pytest.raises(InputError, match="row 2.*landmarks belong on an msi or he row"):
        load_sample_sheet(p, SCHEMA)


def test_control_sections_belong_to_no_sample(tmp_path):
    rows = GOOD + [["", "", "", "fluorescence_control", "results/demo/data/controls/c1.ome.tif", "", "", ""]]
    df = load_sample_sheet(_sheet(tmp_path, rows), SCHEMA)
    from nanohet.io.samplesheet import control_rows, sample_rows

    assert list(control_rows(df).path) == ["results/demo/data/controls/c1.ome.tif"]
    assert control_rows(df)["sample"].isna().all() and list(sample_rows(df)["sample"].unique()) == ["m1_T1"]
    demo = [["m1", "a", "T1", "fluorescence", "results/demo/data/m1_T1/fluorescence.ome.tif", "", "", ""]]
    check_demo_paths(load_sample_sheet(_sheet(tmp_path, demo + rows[2:]), SCHEMA), "results/demo/data")
    bad = demo + [["", "", "", "fluorescence_control", "elsewhere/c1.ome.tif", "", "", ""]]
    with pytest.raises(InputError, match=r"row 3 \(fluorescence_control\).*controls/<name>.ome.tif"):
        check_demo_paths(load_sample_sheet(_sheet(tmp_path, bad), SCHEMA), "results/demo/data")
