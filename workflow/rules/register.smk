# The registration graph (registration.edges): one job per edge, then one job per section that composes
# its chain of edges into the reference section's frame and resamples it once onto the analysis grid. An
# optional landmark CSV per section (sample-sheet column landmarks) starts its edge from the landmark transform.


rule register_edge:
    input:
        unpack(edge_inputs),
    output:
        transform=f"{RESULTS}/registration/{{sample}}/{{moving}}_to_{{fixed}}.tfm",
        qc=f"{RESULTS}/registration/{{sample}}/{{moving}}_to_{{fixed}}_qc.tsv",
        figure=report(
            f"{RESULTS}/registration/{{sample}}/{{moving}}_to_{{fixed}}_qc.png",
            caption="../report/registration_qc.rst",
            category="Registration QC",
            labels={"sample": "{sample}", "edge": "{moving} -> {fixed}"},
        ),
    wildcard_constraints:
        moving="he|msi",
        fixed="fluorescence|he|msi",
    params:
        # this edge's settings only: editing another edge reruns nothing here
        edge=lambda wc: CONFIG.registration.edge(wc.moving, wc.fixed).to_dict(),
        microscopy=MICROSCOPY,
        options=edge_options,
        code=code_version("registration", "microscopy", "figures", "steps/register.py"),
    log:
        f"{LOGS}/register_edge/{{sample}}_{{moving}}_to_{{fixed}}.log",
    benchmark:
        f"{BENCH}/register_edge/{{sample}}_{{moving}}_to_{{fixed}}.tsv"
    threads: CONFIG.registration.defaults.threads
    resources:
        mem_mb=mem_mb(1500, 25),
        runtime=lambda wc, attempt: 15 * attempt,
    conda:
        ENV
    script:
        "../scripts/register_edge.py"


rule msi_to_reference:
    input:
        source=f"{RESULTS}/msi/{{sample}}/ion_images.ome.tif",
        grid=f"{RESULTS}/quantify/{{sample}}/analysis_grid.json",
        edges=lambda wc: chain_transforms(wc.sample, "msi"),
        masks=f"{RESULTS}/microscopy/{{sample}}/masks.ome.tif",
    output:
        transform=f"{RESULTS}/registration/{{sample}}/msi_to_reference.tfm",
        registered=f"{RESULTS}/registration/{{sample}}/msi_in_reference.ome.tif",
        masks_on_msi=f"{RESULTS}/quantify/{{sample}}/masks_on_msi.ome.tif",
    params:
        modality="msi",
        code=code_version("registration", "quantify", "steps/register.py"),
    log:
        f"{LOGS}/msi_to_reference/{{sample}}.log",
    benchmark:
        f"{BENCH}/msi_to_reference/{{sample}}.tsv"
    resources:
        mem_mb=mem_mb(1500, 20),
        runtime=lambda wc, attempt: 10 * attempt,
    conda:
        ENV
    script:
        "../scripts/to_reference.py"


rule he_to_reference:
    input:
        source=sample_path("he"),
        grid=f"{RESULTS}/quantify/{{sample}}/analysis_grid.json",
        edges=lambda wc: chain_transforms(wc.sample, "he"),
    output:
        transform=f"{RESULTS}/registration/{{sample}}/he_to_reference.tfm",
        registered=f"{RESULTS}/registration/{{sample}}/he_in_reference.ome.tif",
    params:
        modality="he",
        source_pixel_size=option("he", "pixel_size"),
        working_um=CONFIG.microscopy.working_pixel_um,
        code=code_version("registration", "quantify", "steps/register.py"),
    log:
        f"{LOGS}/he_to_reference/{{sample}}.log",
    benchmark:
        f"{BENCH}/he_to_reference/{{sample}}.tsv"
    resources:
        mem_mb=mem_mb(1500, 10),
        runtime=lambda wc, attempt: 10 * attempt,
    conda:
        ENV
    script:
        "../scripts/to_reference.py"
