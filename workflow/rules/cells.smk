# Cells: nuclei, territories and the per-cell table of every fluorescence section, with the registered MSI
# analytes read at each cell; per-sample cell measures join the cohort table.


rule cells:
    input:
        fluorescence=sample_path("fluorescence"),
        masks=f"{RESULTS}/microscopy/{{sample}}/masks.ome.tif",
        registered=registered_msi,
        autofluorescence=autofluorescence_table(),
        labels=lambda wc: [_row(wc.sample, "labels")["path"]] if "labels" in MODALITIES[wc.sample] else [],
        grid=f"{RESULTS}/quantify/{{sample}}/analysis_grid.json",
    output:
        cells=f"{RESULTS}/cells/{{sample}}/cells.tsv",
        metrics=f"{RESULTS}/cells/{{sample}}/cell_metrics.tsv",
        h5ad=f"{RESULTS}/cells/{{sample}}/cells.h5ad",
    params:
        microscopy=MICROSCOPY,
        msi=MSI,
        quantify=QUANTIFY,
        pixel_size=option("fluorescence", "pixel_size"),
        channels=option("fluorescence", "channels"),
        code=code_version("microscopy", "quantify", "steps/cells.py"),
    log:
        f"{LOGS}/cells/{{sample}}.log",
    benchmark:
        f"{BENCH}/cells/{{sample}}.tsv"
    resources:
        mem_mb=mem_mb(1500, 30),
        runtime=lambda wc, attempt: 10 * attempt,
    conda:
        ENV
    script:
        "../scripts/cells.py"
