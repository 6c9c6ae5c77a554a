# The embedded demo cohort: simulated raw data with ground truth, and its validation.
# Only active when demo.enabled is true; the analysis rules never read the truth.

if DEMO:
    DEMO_DATA = CONFIG.demo.data_dir
    DEMO_TRUTH = CONFIG.demo.truth_dir

    # one job simulates the cohort (samples, controls, standards) in parallel: ~40 small jobs of their own would
    # each spend more time starting Python than simulating
    rule demo_cohort:
        output:
            demo_outputs(),
        params:
            samples=demo_sample_records(),
            controls=demo_control_records(),
            standards=demo_standard_records(),
            roles={a.name: a.role for a in CONFIG.msi.analytes},
            demo=CONFIG.demo.to_dict(),
            code=code_version("demo", "parallel.py", "steps/demo.py"),
        threads: 2  # the demo budget's 2 cores; a Slurm node of the tests has no more
        log:
            f"{LOGS}/demo_cohort.log",
        benchmark:
            f"{BENCH}/demo_cohort.tsv"
        resources:
            mem_mb=lambda wc, threads, attempt: int(2500 * CONFIG.demo.scale**2 * threads * attempt),
            runtime=lambda wc, attempt: 30 * attempt,
        conda:
            ENV
        script:
            "../scripts/demo_cohort.py"

    rule validate_cohort:
        input:
            unpack(validation_inputs),
            calibration=calibration_table(),
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
            summaries=f"{RESULTS}/validation/true_section_summaries.tsv",
        params:
            samples=validation_records(),
            msi=MSI,
            quantify=QUANTIFY,
            microscopy={"cell_expand_um": CONFIG.microscopy.cell_expand_um},
            code=code_version("demo", "quantify", "registration", "microscopy", "figures", "parallel.py",
                              "steps/demo.py"),
        threads: 2  # the demo budget's 2 cores; a Slurm node of the tests has no more
        log:
            f"{LOGS}/validate_cohort.log",
        benchmark:
            f"{BENCH}/validate_cohort.tsv"
        resources:
            mem_mb=lambda wc, input, threads, attempt: int(
                (1500 + 8 * input_mb(input) / max(len(SECTION_MSI_SAMPLES), 1)) * threads * attempt
            ),
            runtime=lambda wc, attempt: 15 * attempt,
        conda:
            ENV
        script:
            "../scripts/validate_cohort.py"

    rule validate_variance:
        input:
            summaries=f"{RESULTS}/validation/true_section_summaries.tsv",
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
