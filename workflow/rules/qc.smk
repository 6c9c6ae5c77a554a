# The run's QC flags: every check that can flag a sample (registration and volume edges, MSI target ions), in one table that
# the cohort table, the report and the end-of-run summary show.


rule qc_flags:
    input:
        edges=lambda wc: [t for s in SAMPLES for t in edge_qc_tables(s)],
        volume_edges=lambda wc: [t for s in SAMPLES for t in volume_qc_tables(s)],
        msi=expand(f"{RESULTS}/msi/{{sample}}/msi_qc.tsv", sample=samples_with("msi")),
    output:
        table=report(
            f"{RESULTS}/tables/qc_flags.tsv",
            caption="../report/qc_flags.rst",
            category="QC",
        ),
    params:
        code=code_version("flags.py", "steps/qc.py"),
    log:
        f"{LOGS}/qc_flags.log",
    benchmark:
        f"{BENCH}/qc_flags.tsv"
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        ENV
    script:
        "../scripts/qc_flags.py"
