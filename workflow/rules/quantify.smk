# Heterogeneity quantification: metrics per sample (on the analysis grid, and on native MSI pixels with the
# masks mapped onto them), and the cohort tables.


rule quantify_section:
    input:
        unpack(section_msi_inputs),
        fluorescence=sample_path("fluorescence"),
        masks=f"{RESULTS}/microscopy/{{sample}}/masks.ome.tif",
        grid=f"{RESULTS}/quantify/{{sample}}/analysis_grid.json",
        calibration=calibration_table(),
        regions=drawn_regions,
        autofluorescence=autofluorescence_table(),
    output:
        metrics=f"{RESULTS}/quantify/{{sample}}/metrics.tsv",
        profiles=f"{RESULTS}/quantify/{{sample}}/profiles.tsv",
        maps=f"{RESULTS}/quantify/{{sample}}/region_maps.ome.tif",
        scales=f"{RESULTS}/quantify/{{sample}}/scale_profiles.tsv",
    params:
        msi=MSI,
        microscopy=MICROSCOPY,
        quantify=QUANTIFY,
        calibrated=CALIBRATED,
        pixel_size=option("fluorescence", "pixel_size"),
        channels=option("fluorescence", "channels"),
        code=code_version("quantify", "microscopy", "steps/quantify.py"),
    wildcard_constraints:
        sample=one_of(SECTION_SAMPLES),
    log:
        f"{LOGS}/quantify_section/{{sample}}.log",
    benchmark:
        f"{BENCH}/quantify_section/{{sample}}.tsv"
    resources:
        mem_mb=mem_mb(1500, 25),
        runtime=lambda wc, attempt: 10 * attempt,
    conda:
        ENV
    script:
        "../scripts/quantify_section.py"


rule quantify_msi:
    input:
        ions=f"{RESULTS}/msi/{{sample}}/ion_images.ome.tif",
        calibration=calibration_table(),
    output:
        metrics=f"{RESULTS}/quantify/{{sample}}/metrics.tsv",
        maps=f"{RESULTS}/quantify/{{sample}}/region_maps.ome.tif",
        scales=f"{RESULTS}/quantify/{{sample}}/scale_profiles.tsv",
    params:
        msi=MSI,
        quantify=QUANTIFY,
        calibrated=CALIBRATED,
        code=code_version("quantify", "msi", "steps/quantify.py"),
    wildcard_constraints:
        sample=one_of(MSI_ONLY_SAMPLES),
    log:
        f"{LOGS}/quantify_msi/{{sample}}.log",
    benchmark:
        f"{BENCH}/quantify_msi/{{sample}}.tsv"
    resources:
        mem_mb=mem_mb(1500, 25),
        runtime=lambda wc, attempt: 10 * attempt,
    conda:
        ENV
    script:
        "../scripts/quantify_msi.py"


rule cohort_table:
    input:
        metrics=expand(f"{RESULTS}/quantify/{{sample}}/metrics.tsv", sample=SECTION_SAMPLES + MSI_ONLY_SAMPLES),
        volume=expand(f"{RESULTS}/quantify/{{sample}}/volume_metrics.tsv", sample=samples_with("volume"))
        + anatomical_volume_metrics(),
        section=expand(f"{RESULTS}/microscopy/{{sample}}/section_stats.tsv", sample=SECTION_SAMPLES),
        cells=expand(f"{RESULTS}/cells/{{sample}}/cell_metrics.tsv", sample=SECTION_SAMPLES),
        scales=expand(f"{RESULTS}/quantify/{{sample}}/scale_profiles.tsv", sample=SECTION_SAMPLES + MSI_ONLY_SAMPLES),
        qc_flags=f"{RESULTS}/tables/qc_flags.tsv",
    output:
        metrics=report(
            f"{RESULTS}/tables/cohort_metrics.tsv",
            caption="../report/cohort_metrics.rst",
            category="Tables",
        ),
        summary=report(
            f"{RESULTS}/tables/cohort_summary.tsv",
            caption="../report/cohort_summary.rst",
            category="Tables",
        ),
        availability=report(
            f"{RESULTS}/tables/availability.tsv",
            caption="../report/availability.rst",
            category="Tables",
        ),
        comparisons=report(
            f"{RESULTS}/tables/group_comparisons.tsv",
            caption="../report/group_comparisons.rst",
            category="Tables",
        ),
        variance=report(
            f"{RESULTS}/tables/variance_components.tsv",
            caption="../report/variance_components.rst",
            category="Tables",
        ),
        invivo=f"{RESULTS}/tables/invivo_exvivo.tsv",
        scales=report(
            f"{RESULTS}/tables/scale_profiles_pooled.tsv",
            caption="../report/scale_profiles_pooled.rst",
            category="Tables",
        ),
        invivo_correlations=report(
            f"{RESULTS}/tables/invivo_exvivo_correlations.tsv",
            caption="../report/invivo_exvivo.rst",
            category="Tables",
        ),
    params:
        samples=sample_records(),
        modalities=measured_modalities(),
        statistics=CONFIG.statistics.to_dict(),
        homogenisation_cv=CONFIG.quantify.homogenisation_cv,
        code=code_version("quantify", "flags.py", "steps/quantify.py"),
    log:
        f"{LOGS}/cohort_table.log",
    benchmark:
        f"{BENCH}/cohort_table.tsv"
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        ENV
    script:
        "../scripts/cohort_table.py"
