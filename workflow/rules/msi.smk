# Mass spectrometry imaging: one streaming pass over each imzML file.


rule msi_extract:
    input:
        imzml=sample_path("msi"),
        ibd=ibd_path,
        calibration=calibration_table(),
    output:
        ions=f"{RESULTS}/msi/{{sample}}/ion_images.ome.tif",
        stats=f"{RESULTS}/msi/{{sample}}/ion_stats.tsv",
        spectrum=f"{RESULTS}/msi/{{sample}}/mean_spectrum.tsv",
        index=f"{RESULTS}/msi/{{sample}}/imzml_index.npz",
        qc=f"{RESULTS}/msi/{{sample}}/msi_qc.tsv",
    params:
        msi=MSI,
        pixel_size=option("msi", "pixel_size"),
        code=code_version("msi", "steps/msi.py"),
    log:
        f"{LOGS}/msi_extract/{{sample}}.log",
    benchmark:
        f"{BENCH}/msi_extract/{{sample}}.tsv"
    threads: 2
    resources:
        # streaming keeps the .ibd out of memory; the parsed XML index scales with the .imzML
        mem_mb=mem_mb(1000, 0.5),
        runtime=lambda wc, input, attempt: int((10 + input_mb(input) / 200) * attempt),
    conda:
        ENV
    script:
        "../scripts/msi_extract.py"


rule msi_calibration:
    input:
        imzml=sorted(set(STANDARDS["path"])),
        ibd=sorted({ibd_of(p) for p in STANDARDS["path"]}),
    output:
        calibration=report(
            f"{RESULTS}/msi/calibration.tsv",
            caption="../report/calibration.rst",
            category="Tables",
        ),
        standards=f"{RESULTS}/msi/calibration_standards.tsv",
    params:
        standards=standard_records(),
        sheet=CONFIG.samples,
        msi=MSI,
        code=code_version("msi", "steps/msi.py"),
    log:
        f"{LOGS}/msi_calibration.log",
    benchmark:
        f"{BENCH}/msi_calibration.tsv"
    threads: 2
    resources:
        mem_mb=mem_mb(1000, 0.5),
        runtime=lambda wc, input, attempt: int((10 + input_mb(input) / 200) * attempt),
    conda:
        ENV
    script:
        "../scripts/msi_calibration.py"
