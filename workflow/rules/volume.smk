# In vivo volumes (PET/SPECT/MR/CT): uptake statistics inside the tumour mask, and the volume registration
# graph (volume_registration.edges): rigid edges composed onto the reference volume's grid.


rule quantify_volume:
    input:
        volume=sample_path("volume"),
        mask=option("volume", "mask"),
    output:
        metrics=f"{RESULTS}/quantify/{{sample}}/volume_metrics.tsv",
    params:
        quantify=QUANTIFY_VOLUME,
        structure=option("volume", "structure"),
        dicom_series=option("volume", "dicom_series"),
        counting=counting_options,
        code=code_version("quantify", "steps/volume.py"),
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


rule quantify_anatomical_volume:
    input:
        volume=lambda wc: _row(wc.sample, wc.vmodality)["path"],
        mask=lambda wc: sample_option(wc.sample, wc.vmodality, "mask"),
    output:
        metrics=f"{RESULTS}/quantify/{{sample}}/{{vmodality}}_metrics.tsv",
    wildcard_constraints:
        vmodality="ct|mr",
    params:
        quantify=QUANTIFY_VOLUME,
        structure=lambda wc: sample_option(wc.sample, wc.vmodality, "structure"),
        dicom_series=lambda wc: sample_option(wc.sample, wc.vmodality, "dicom_series"),
        modality=lambda wc: wc.vmodality,
        code=code_version("quantify", "steps/volume.py"),
    log:
        f"{LOGS}/quantify_anatomical_volume/{{sample}}_{{vmodality}}.log",
    benchmark:
        f"{BENCH}/quantify_anatomical_volume/{{sample}}_{{vmodality}}.tsv"
    resources:
        mem_mb=mem_mb(1000, 20),
        runtime=lambda wc, attempt: 5 * attempt,
    conda:
        ENV
    script:
        "../scripts/quantify_volume.py"


rule register_volume_edge:
    input:
        unpack(volume_edge_inputs),
    output:
        transform=f"{RESULTS}/registration/{{sample}}/volumes/{{vmoving}}_to_{{vfixed}}.tfm",
        qc=f"{RESULTS}/registration/{{sample}}/volumes/{{vmoving}}_to_{{vfixed}}_qc.tsv",
    wildcard_constraints:
        vmoving="volume|ct|mr",
        vfixed="volume|ct|mr",
    params:
        settings=CONFIG.volume_registration.to_dict(),
        shared_frame=shared_frame,
        moving_structure=lambda wc: sample_option(wc.sample, wc.vmoving, "structure"),
        fixed_structure=lambda wc: sample_option(wc.sample, wc.vfixed, "structure"),
        moving_series=lambda wc: sample_option(wc.sample, wc.vmoving, "dicom_series"),
        fixed_series=lambda wc: sample_option(wc.sample, wc.vfixed, "dicom_series"),
        code=code_version("registration", "steps/volume.py"),
    log:
        f"{LOGS}/register_volume_edge/{{sample}}_{{vmoving}}_to_{{vfixed}}.log",
    benchmark:
        f"{BENCH}/register_volume_edge/{{sample}}_{{vmoving}}_to_{{vfixed}}.tsv"
    threads: CONFIG.volume_registration.threads
    resources:
        mem_mb=mem_mb(1500, 30),
        runtime=lambda wc, attempt: 20 * attempt,
    conda:
        ENV
    script:
        "../scripts/register_volume_edge.py"


rule volume_to_reference:
    input:
        image=lambda wc: _row(wc.sample, wc.vmodality)["path"],
        reference=lambda wc: _row(wc.sample, VOLUME_REFERENCE)["path"],
        edges=lambda wc: volume_chain_transforms(wc.sample, wc.vmodality),
    output:
        image=f"{RESULTS}/registration/{{sample}}/volumes/{{vmodality}}_in_reference.nii.gz",
        transform=f"{RESULTS}/registration/{{sample}}/volumes/{{vmodality}}_to_reference.tfm",
    wildcard_constraints:
        vmodality="volume|ct|mr",
    params:
        is_mask=False,
        series=lambda wc: sample_option(wc.sample, wc.vmodality, "dicom_series"),
        reference_series=lambda wc: sample_option(wc.sample, VOLUME_REFERENCE, "dicom_series"),
        code=code_version("registration", "steps/volume.py"),
    log:
        f"{LOGS}/volume_to_reference/{{sample}}_{{vmodality}}.log",
    benchmark:
        f"{BENCH}/volume_to_reference/{{sample}}_{{vmodality}}.tsv"
    resources:
        mem_mb=mem_mb(1000, 30),
        runtime=lambda wc, attempt: 10 * attempt,
    conda:
        ENV
    script:
        "../scripts/volume_to_reference.py"


rule volume_mask_to_reference:
    input:
        image=lambda wc: sample_option(wc.sample, wc.vmodality, "mask"),
        grid=lambda wc: _row(wc.sample, wc.vmodality)["path"],
        reference=lambda wc: _row(wc.sample, VOLUME_REFERENCE)["path"],
        edges=lambda wc: volume_chain_transforms(wc.sample, wc.vmodality),
    output:
        image=f"{RESULTS}/registration/{{sample}}/volumes/{{vmodality}}_mask_in_reference.nii.gz",
    wildcard_constraints:
        vmodality="volume|ct|mr",
    params:
        is_mask=True,
        structure=lambda wc: sample_option(wc.sample, wc.vmodality, "structure"),
        series=lambda wc: sample_option(wc.sample, wc.vmodality, "dicom_series"),
        reference_series=lambda wc: sample_option(wc.sample, VOLUME_REFERENCE, "dicom_series"),
        code=code_version("registration", "steps/volume.py"),
    log:
        f"{LOGS}/volume_mask_to_reference/{{sample}}_{{vmodality}}.log",
    benchmark:
        f"{BENCH}/volume_mask_to_reference/{{sample}}_{{vmodality}}.tsv"
    resources:
        mem_mb=mem_mb(1000, 30),
        runtime=lambda wc, attempt: 10 * attempt,
    conda:
        ENV
    script:
        "../scripts/volume_to_reference.py"
