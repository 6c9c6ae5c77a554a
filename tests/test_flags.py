"""The run's QC flags: one table of every check, per-sample marks, the end-of-run summary."""
import pandas as pd

from nanohet.flags import flag_table, sample_flags, summary_lines


def _qc(path, rows):
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    return str(path)


def test_flags_are_gathered_marked_and_summarised(tmp_path):
    reg = tmp_path / "results" / "registration"
    (reg / "a_T1" / "volumes").mkdir(parents=True)
    (reg / "b_T1").mkdir(parents=True)
    a = _qc(reg / "a_T1" / "msi_to_fluorescence_qc.tsv",
            [{"sample": "a_T1", "edge": "msi->fluorescence", "flagged": False, "flag_reason": ""}])
    b = _qc(reg / "b_T1" / "msi_to_fluorescence_qc.tsv",
            [{"sample": "b_T1", "edge": "msi->fluorescence", "flagged": True, "flag_reason": "tissue Dice dropped"}])
    v = _qc(reg / "a_T1" / "volumes" / "mr_to_ct_qc.tsv",
            [{"sample": "a_T1", "edge": "mr->ct", "flagged": True, "flag_reason": ""}])
    flags = flag_table({"registration": [a, b], "volume registration": [v]})
    assert flags.flagged.tolist() == [True, True, False]  # flagged rows first
    assert flags.loc[flags["sample"] == "a_T1"].reason.tolist()[0] == "flagged (see the QC table)"
    marks = sample_flags(flags).set_index("sample")
    assert marks.loc["a_T1", "qc"] == "flagged" and marks.loc["a_T1", "qc_reason"].startswith("mr->ct")
    assert marks.loc["b_T1", "qc_reason"] == "msi->fluorescence: tissue Dice dropped"
    lines = summary_lines(tmp_path / "results")
    assert lines[0].startswith("nanohet QC: 2 of 3 checks flagged")
    assert "  FLAGGED b_T1 registration msi->fluorescence: tissue Dice dropped" in lines


def test_a_run_without_flags_says_so(tmp_path):
    reg = tmp_path / "registration" / "a_T1"
    reg.mkdir(parents=True)
    _qc(reg / "he_to_fluorescence_qc.tsv", [{"sample": "a_T1", "edge": "he->fluorescence", "flagged": False}])
    assert summary_lines(tmp_path) == ["nanohet QC: 0 of 1 checks flagged (all passed)"]
    assert summary_lines(tmp_path / "nothing") == []
