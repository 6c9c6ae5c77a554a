# Registration of MSI and H&E onto the fluorescence section (the sample's reference frame); an optional
# landmark CSV per section (sample-sheet column landmarks) starts the fit from the landmark transform.


rule register_msi:
    input:
        ions=f"{RESULTS}/msi/{{sample}}/ion_images.ome.tif",
        fluorescence=sample_path("fluorescence"),
        masks=f"{RESULTS}/microscopy/{{sample}}/masks.ome.tif",
        landmarks=landmarks_of("msi"),
    output:
        transform=f"{RESULTS}/registration/{{sample}}/msi_to_reference.tfm",
        registered=f"{RESULTS}/registration/{{sample}}/msi_in_reference.ome.tif",
        qc=f"{RESULTS}/registration/{{sample}}/msi_qc.tsv",
        masks_on_msi=f"{RESULTS}/registration/{{sample}}/masks_on_msi.ome.tif",
        figure=report(
            f"{RESULTS}/registration/{{sample}}/msi_qc.png",
            caption="../report/registration_qc.rst",
            category="Registration QC",
            labels={"sample": "{sample}", "edge": "MSI -> fluorescence"},
        ),
    params:
        registration=config["registration"],
        quantify=config["quantify"],
        microscopy=config["microscopy"],
        pixel_size=lambda wc: sample_option(wc.sample, "fluorescence", "pixel_size"),
        channels=lambda wc: sample_option(wc.sample, "fluorescence", "channels"),
    log:
        f"{LOGS}/register_msi/{{sample}}.log",
    benchmark:
        f"{BENCH}/register_msi/{{sample}}.tsv"
    threads: config["registration"].get("threads", 1)
    resources:
        mem_mb=mem_mb(1500, 20),
        runtime=lambda wc, attempt: 15 * attempt,
    conda:
        ENV
    script:
        "../scripts/register_msi.py"


rule register_he:
    input:
        he=sample_path("he"),
        fluorescence=sample_path("fluorescence"),
        masks=f"{RESULTS}/microscopy/{{sample}}/masks.ome.tif",
        landmarks=landmarks_of("he"),
    output:
        transform=f"{RESULTS}/registration/{{sample}}/he_to_reference.tfm",
        registered=f"{RESULTS}/registration/{{sample}}/he_in_reference.ome.tif",
        qc=f"{RESULTS}/registration/{{sample}}/he_qc.tsv",
        figure=report(
            f"{RESULTS}/registration/{{sample}}/he_qc.png",
            caption="../report/registration_qc.rst",
            category="Registration QC",
            labels={"sample": "{sample}", "edge": "H&E -> fluorescence"},
        ),
    params:
        registration=config["registration"],
        quantify=config["quantify"],
        microscopy=config["microscopy"],
        pixel_size=lambda wc: sample_option(wc.sample, "fluorescence", "pixel_size"),
        channels=lambda wc: sample_option(wc.sample, "fluorescence", "channels"),
        he_pixel_size=lambda wc: sample_option(wc.sample, "he", "pixel_size"),
    log:
        f"{LOGS}/register_he/{{sample}}.log",
    benchmark:
        f"{BENCH}/register_he/{{sample}}.tsv"
    threads: config["registration"].get("threads", 1)
    resources:
        mem_mb=mem_mb(1500, 25),
        runtime=lambda wc, attempt: 15 * attempt,
    conda:
        ENV
    script:
        "../scripts/register_he.py"
