# Heterogeneity quantification per sample, and the cohort tables.


rule quantify_section:
    input:
        fluorescence=sample_path("fluorescence"),
        masks=f"{RESULTS}/microscopy/{{sample}}/masks.ome.tif",
        registered=f"{RESULTS}/registration/{{sample}}/msi_in_reference.ome.tif",
        ions=f"{RESULTS}/msi/{{sample}}/ion_images.ome.tif",
        masks_on_msi=f"{RESULTS}/registration/{{sample}}/masks_on_msi.ome.tif",
    output:
        metrics=f"{RESULTS}/quantify/{{sample}}/metrics.tsv",
        profiles=f"{RESULTS}/quantify/{{sample}}/profiles.tsv",
    params:
        msi=config["msi"],
        microscopy=config["microscopy"],
        quantify=config["quantify"],
        pixel_size=lambda wc: sample_option(wc.sample, "fluorescence", "pixel_size"),
        channels=lambda wc: sample_option(wc.sample, "fluorescence", "channels"),
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


rule cohort_table:
    input:
        metrics=expand(f"{RESULTS}/quantify/{{sample}}/metrics.tsv", sample=SAMPLES),
        volume=expand(f"{RESULTS}/quantify/{{sample}}/volume_metrics.tsv", sample=samples_with("volume")),
        section=expand(f"{RESULTS}/microscopy/{{sample}}/section_stats.tsv", sample=SAMPLES),
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
    params:
        sheet=SHEET,
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
