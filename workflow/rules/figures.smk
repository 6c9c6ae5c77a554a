# Figures: one panel per sample and a cohort summary.


rule sample_figure:
    input:
        fluorescence=sample_path("fluorescence"),
        masks=f"{RESULTS}/microscopy/{{sample}}/masks.ome.tif",
        registered=registered_msi,
        profiles=f"{RESULTS}/quantify/{{sample}}/profiles.tsv",
        metrics=f"{RESULTS}/quantify/{{sample}}/metrics.tsv",
    output:
        figure=report(
            f"{RESULTS}/figures/samples/{{sample}}.png",
            caption="../report/sample_figure.rst",
            category="Samples",
            labels={"sample": "{sample}"},
        ),
    params:
        channels_by_role=CONFIG.microscopy.channels,
        drug=DRUG,
        pixel_size=option("fluorescence", "pixel_size"),
        channels=option("fluorescence", "channels"),
        working_um=CONFIG.microscopy.working_pixel_um,
        code=code_version("figures", "steps/figures.py"),
    log:
        f"{LOGS}/sample_figure/{{sample}}.log",
    benchmark:
        f"{BENCH}/sample_figure/{{sample}}.tsv"
    resources:
        mem_mb=mem_mb(1500, 10),
        runtime=5,
    conda:
        ENV
    script:
        "../scripts/sample_figure.py"


rule cohort_figure:
    input:
        cohort=f"{RESULTS}/tables/cohort_metrics.tsv",
    output:
        figure=report(
            f"{RESULTS}/figures/cohort_summary.png",
            caption="../report/cohort_figure.rst",
            category="Cohort",
        ),
        figure_svg=f"{RESULTS}/figures/cohort_summary.svg",
        figure_pdf=f"{RESULTS}/figures/cohort_summary.pdf",
    params:
        drug=DRUG,
        code=code_version("figures", "steps/figures.py"),
    log:
        f"{LOGS}/cohort_figure.log",
    benchmark:
        f"{BENCH}/cohort_figure.tsv"
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        ENV
    script:
        "../scripts/cohort_figure.py"
