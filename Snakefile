# nanohet: multiscale imaging of nanomedicine spatial heterogeneity.
# Run:  snakemake --cores all   then   snakemake --report results/report.html
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

sys.path.insert(0, str(Path(workflow.basedir) / "src"))  # nanohet, also without pip install


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


wildcard_constraints:
    sample="|".join(re.escape(s) for s in SAMPLES),


include: "workflow/rules/demo.smk"
include: "workflow/rules/msi.smk"
include: "workflow/rules/microscopy.smk"
include: "workflow/rules/register.smk"
include: "workflow/rules/quantify.smk"
include: "workflow/rules/cells.smk"
include: "workflow/rules/volume.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/qc.smk"


onsuccess:
    qc_summary()


onerror:
    qc_summary()


rule all:
    input:
        all_outputs(),
    default_target: True
