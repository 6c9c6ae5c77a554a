# The registration graph (registration.edges): one job per edge, then one job per section that composes
# its chain of edges into the fluorescence (reference) frame and resamples it once. An optional landmark
# CSV per section (sample-sheet column landmarks) starts its edge from the landmark transform.


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
        registration=config["registration"],
        microscopy=config["microscopy"],
        options=edge_options,
    log:
        f"{LOGS}/register_edge/{{sample}}_{{moving}}_to_{{fixed}}.log",
    benchmark:
        f"{BENCH}/register_edge/{{sample}}_{{moving}}_to_{{fixed}}.tsv"
    threads: config["registration"].get("threads", 1)
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
        fluorescence=sample_path("fluorescence"),
        masks=f"{RESULTS}/microscopy/{{sample}}/masks.ome.tif",
        edges=lambda wc: chain_transforms(wc.sample, "msi"),
    output:
        transform=f"{RESULTS}/registration/{{sample}}/msi_to_reference.tfm",
        registered=f"{RESULTS}/registration/{{sample}}/msi_in_reference.ome.tif",
        masks_on_msi=f"{RESULTS}/registration/{{sample}}/masks_on_msi.ome.tif",
    params:
        modality="msi",
        quantify=config["quantify"],
        pixel_size=lambda wc: sample_option(wc.sample, "fluorescence", "pixel_size"),
        channels=lambda wc: sample_option(wc.sample, "fluorescence", "channels"),
        source_pixel_size=None,
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
        fluorescence=sample_path("fluorescence"),
        edges=lambda wc: chain_transforms(wc.sample, "he"),
    output:
        transform=f"{RESULTS}/registration/{{sample}}/he_to_reference.tfm",
        registered=f"{RESULTS}/registration/{{sample}}/he_in_reference.ome.tif",
    params:
        modality="he",
        quantify=config["quantify"],
        pixel_size=lambda wc: sample_option(wc.sample, "fluorescence", "pixel_size"),
        channels=lambda wc: sample_option(wc.sample, "fluorescence", "channels"),
        source_pixel_size=lambda wc: sample_option(wc.sample, "he", "pixel_size"),
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
