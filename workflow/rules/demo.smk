# The embedded demo cohort: simulated raw data with ground truth, and its validation.
# Only active when demo.enabled is true; the analysis rules never read the truth.

if DEMO:
    DEMO_DATA = CONFIG.demo.data_dir
    DEMO_TRUTH = CONFIG.demo.truth_dir

    rule demo_sample:
        output:
            fluorescence=f"{DEMO_DATA}/{{sample}}/fluorescence.ome.tif",
            he=f"{DEMO_DATA}/{{sample}}/he.ome.tif",
            msi=f"{DEMO_DATA}/{{sample}}/msi.imzML",
            ibd=f"{DEMO_DATA}/{{sample}}/msi.ibd",
            volume=f"{DEMO_DATA}/{{sample}}/volume.nii.gz",
            volume_mask=f"{DEMO_DATA}/{{sample}}/volume_mask.nii.gz",
            truth=f"{DEMO_TRUTH}/{{sample}}/truth.json",
            landmarks=f"{DEMO_TRUTH}/{{sample}}/landmarks_msi.csv",
            truth_cells=f"{DEMO_TRUTH}/{{sample}}/truth_cells.tsv",
            truth_maps=f"{DEMO_TRUTH}/{{sample}}/truth_maps.ome.tif",
            truth_masks=f"{DEMO_TRUTH}/{{sample}}/truth_masks.ome.tif",
            truth_fields=f"{DEMO_TRUTH}/{{sample}}/truth_fields.ome.tif",
        params:
            group=lambda wc: group_of(wc.sample),
            subject=lambda wc: sheet_value(wc.sample, "subject"),
            tumour=lambda wc: sheet_value(wc.sample, "tumour"),
            demo=CONFIG.demo.to_dict(),
            truth_dir=lambda wc: f"{DEMO_TRUTH}/{wc.sample}",
            code=code_version("demo", "steps/demo.py"),
        log:
            f"{LOGS}/demo_sample/{{sample}}.log",
        benchmark:
            f"{BENCH}/demo_sample/{{sample}}.tsv"
        resources:
            mem_mb=lambda wc, attempt: int(2500 * CONFIG.demo.scale**2 * attempt),
            runtime=lambda wc, attempt: 15 * attempt,
        conda:
            ENV
        script:
            "../scripts/demo_sample.py"

    rule demo_control:
        output:
            fluorescence=f"{DEMO_DATA}/controls/{{control}}.ome.tif",
        params:
            demo=CONFIG.demo.to_dict(),
            code=code_version("demo", "steps/demo.py"),
        wildcard_constraints:
            control="[^/]+",
        log:
            f"{LOGS}/demo_control/{{control}}.log",
        benchmark:
            f"{BENCH}/demo_control/{{control}}.tsv"
        resources:
            mem_mb=lambda wc, attempt: int(2500 * CONFIG.demo.scale**2 * attempt),
            runtime=lambda wc, attempt: 15 * attempt,
        conda:
            ENV
        script:
            "../scripts/demo_control.py"

    rule demo_standard:
        output:
            imzml=f"{DEMO_DATA}/standards/{{standard}}.imzML",
            ibd=f"{DEMO_DATA}/standards/{{standard}}.ibd",
        params:
            rows=lambda wc: standard_rows_of(f"{DEMO_DATA}/standards/{wc.standard}.imzML"),
            roles={a.name: a.role for a in CONFIG.msi.analytes},
            demo=CONFIG.demo.to_dict(),
            code=code_version("demo", "steps/demo.py"),
        wildcard_constraints:
            standard="[^/]+",
        log:
            f"{LOGS}/demo_standard/{{standard}}.log",
        benchmark:
            f"{BENCH}/demo_standard/{{standard}}.tsv"
        resources:
            mem_mb=1000,
            runtime=5,
        conda:
            ENV
        script:
            "../scripts/demo_standard.py"

    rule validate_sample:
        input:
            truth=f"{DEMO_TRUTH}/{{sample}}/truth.json",
            landmarks=f"{DEMO_TRUTH}/{{sample}}/landmarks_msi.csv",
            truth_masks=f"{DEMO_TRUTH}/{{sample}}/truth_masks.ome.tif",
            truth_fields=f"{DEMO_TRUTH}/{{sample}}/truth_fields.ome.tif",
            truth_cells=f"{DEMO_TRUTH}/{{sample}}/truth_cells.tsv",
            cell_metrics=f"{RESULTS}/cells/{{sample}}/cell_metrics.tsv",
            transform=f"{RESULTS}/registration/{{sample}}/msi_to_reference.tfm",
            metrics=f"{RESULTS}/quantify/{{sample}}/metrics.tsv",
            fluorescence_masks=f"{RESULTS}/microscopy/{{sample}}/masks.ome.tif",
            calibration=calibration_table(),
            volume_metrics=lambda wc: (
                [f"{RESULTS}/quantify/{wc.sample}/volume_metrics.tsv"] if wc.sample in samples_with("volume") else []
            ),
            he_transform=lambda wc: (
                [f"{RESULTS}/registration/{wc.sample}/he_to_reference.tfm"] if "he" in CHAINS[wc.sample] else []
            ),
        output:
            tre=f"{RESULTS}/validation/{{sample}}/registration_error.tsv",
            compare=f"{RESULTS}/validation/{{sample}}/metrics_vs_truth.tsv",
            summaries=f"{RESULTS}/validation/{{sample}}/true_section_summaries.tsv",
        params:
            msi=MSI,
            quantify=QUANTIFY,
            microscopy={"cell_expand_um": CONFIG.microscopy.cell_expand_um},
            code=code_version("demo", "quantify", "registration", "microscopy", "steps/demo.py"),
        log:
            f"{LOGS}/validate_sample/{{sample}}.log",
        benchmark:
            f"{BENCH}/validate_sample/{{sample}}.tsv"
        resources:
            mem_mb=mem_mb(1500, 8),
            runtime=5,
        conda:
            ENV
        script:
            "../scripts/validate_sample.py"

    rule validation_tables:
        input:
            tre=expand(f"{RESULTS}/validation/{{sample}}/registration_error.tsv", sample=SECTION_MSI_SAMPLES),
            compare=expand(f"{RESULTS}/validation/{{sample}}/metrics_vs_truth.tsv", sample=SECTION_MSI_SAMPLES),
        output:
            tre=report(
                f"{RESULTS}/tables/registration_error.tsv",
                caption="../report/registration_error.rst",
                category="Validation",
            ),
            compare=report(
                f"{RESULTS}/tables/metrics_vs_truth.tsv",
                caption="../report/metrics_vs_truth.rst",
                category="Validation",
            ),
            figure=report(
                f"{RESULTS}/figures/validation.png",
                caption="../report/validation.rst",
                category="Validation",
            ),
        params:
            code=code_version("figures", "steps/demo.py"),
        log:
            f"{LOGS}/validation_tables.log",
        benchmark:
            f"{BENCH}/validation_tables.tsv"
        resources:
            mem_mb=1000,
            runtime=5,
        conda:
            ENV
        script:
            "../scripts/validation_tables.py"

    rule validate_variance:
        input:
            summaries=expand(
                f"{RESULTS}/validation/{{sample}}/true_section_summaries.tsv", sample=SECTION_MSI_SAMPLES
            ),
            variance=f"{RESULTS}/tables/variance_components.tsv",
        output:
            table=report(
                f"{RESULTS}/tables/variance_vs_truth.tsv",
                caption="../report/variance_vs_truth.rst",
                category="Validation",
            ),
        params:
            level_sd=CONFIG.demo.level_sd,
            code=code_version("demo", "quantify/variance.py", "steps/demo.py"),
        log:
            f"{LOGS}/validate_variance.log",
        benchmark:
            f"{BENCH}/validate_variance.tsv"
        resources:
            mem_mb=1000,
            runtime=5,
        conda:
            ENV
        script:
            "../scripts/validate_variance.py"
