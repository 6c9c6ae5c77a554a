# In vivo volumes (PET/SPECT/MR/CT): uptake statistics inside the tumour mask.


rule quantify_volume:
    input:
        volume=sample_path("volume"),
        mask=lambda wc: sample_option(wc.sample, "volume", "mask"),
    output:
        metrics=f"{RESULTS}/quantify/{{sample}}/volume_metrics.tsv",
    log:
        f"{LOGS}/quantify_volume/{{sample}}.log",
    benchmark:
        f"{BENCH}/quantify_volume/{{sample}}.tsv"
    resources:
        mem_mb=mem_mb(1000, 20),
        runtime=lambda wc, attempt: 5 * attempt,
    conda:
        ENV
    script:
        "../scripts/quantify_volume.py"
