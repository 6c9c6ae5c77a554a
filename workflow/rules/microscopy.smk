# Fluorescence microscopy: channel roles, tissue, necrosis and vessel masks, and the analysis grid over them.


rule microscopy_preprocess:
    input:
        fluorescence=sample_path("fluorescence"),
    output:
        masks=f"{RESULTS}/microscopy/{{sample}}/masks.ome.tif",
        stats=f"{RESULTS}/microscopy/{{sample}}/section_stats.tsv",
        grid=f"{RESULTS}/quantify/{{sample}}/analysis_grid.json",
    params:
        microscopy=MICROSCOPY,
        spacing_um=CONFIG.quantify.analysis_spacing_um,
        pixel_size=option("fluorescence", "pixel_size"),
        channels=option("fluorescence", "channels"),
        code=code_version("microscopy", "quantify/grid.py", "steps/microscopy.py"),
    log:
        f"{LOGS}/microscopy_preprocess/{{sample}}.log",
    benchmark:
        f"{BENCH}/microscopy_preprocess/{{sample}}.tsv"
    resources:
        mem_mb=mem_mb(1500, 25),
        runtime=lambda wc, attempt: 10 * attempt,
    conda:
        ENV
    script:
        "../scripts/microscopy_preprocess.py"


rule autofluorescence:
    input:
        controls=[rec["path"] for rec in control_records()],
    output:
        table=f"{RESULTS}/microscopy/autofluorescence.tsv",
    params:
        controls=control_records(),
        microscopy=MICROSCOPY,
        code=code_version("microscopy", "steps/microscopy.py"),
    log:
        f"{LOGS}/autofluorescence.log",
    benchmark:
        f"{BENCH}/autofluorescence.tsv"
    resources:
        mem_mb=mem_mb(1500, 25),
        runtime=lambda wc, attempt: 10 * attempt,
    conda:
        ENV
    script:
        "../scripts/autofluorescence.py"
