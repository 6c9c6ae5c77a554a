"""Settings: each config section parsed once into a typed object, defaults in one place."""
from dataclasses import fields

import numpy as np
import pytest
import yaml

from conftest import REPO
from nanohet.errors import InputError
from nanohet.settings import (EdgeSettings, MSISettings, RegistrationSettings, VolumeRegistrationSettings,
                              from_config)

CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())


def test_the_default_config_parses_and_matches_its_values():
    c = from_config(CONFIG)
    assert c.msi.analyte("drug").name == "doxorubicin" and c.msi.analyte("carrier").name == "peg_carrier"
    assert c.msi.unit(c.msi.analyte("drug")) == "ug/g-equivalent"
    he = c.registration.edge("he", "fluorescence")
    assert he.transform == "rigid" and he.flip_search and he.histogram_bins == 64
    assert he.start_angles() == tuple(float(a) for a in np.arange(-180, 180, 5.0)) and len(he.start_angles()) == 72
    msi = c.registration.edge("msi", "fluorescence")  # no overrides: the shared settings
    assert msi.transform == "affine" and msi.start_angles() == (0.0,) and msi.min_dice == 0.8


def test_a_missing_key_takes_the_one_default():
    """Keys left out of the config take the dataclass defaults (the schema holds none)."""
    c = from_config({"samples": "s.tsv", "msi": {"analytes": [{"name": "a", "mz": 500.0, "ppm": 5}],
                                                  "normalisation": "tic"}})
    assert c.registration.defaults == EdgeSettings() and c.volume_registration == VolumeRegistrationSettings()
    assert c.quantify.analysis_spacing_um == 10.0 and c.msi.top_n_peaks == 10
    assert c.msi.unit(c.msi.analytes[0]) == "fraction of TIC"

    def defaults(node):  # every "default" anywhere in the schema
        if isinstance(node, dict):
            return ["default" in node] + [d for v in node.values() for d in defaults(v)]
        if isinstance(node, list):
            return [d for v in node for d in defaults(v)]
        return []

    assert not any(defaults(SCHEMA))


def test_every_schema_key_of_a_section_is_a_settings_field():
    props = SCHEMA["properties"]
    edge_keys = set(SCHEMA["$defs"]["edge_settings"]["properties"])
    assert edge_keys == {f.name for f in fields(EdgeSettings)}
    assert set(props["registration"]["properties"]) | edge_keys == {"reference", "edges"} | edge_keys
    assert set(props["volume_registration"]["properties"]) == {f.name for f in fields(VolumeRegistrationSettings)}
    assert set(props["msi"]["properties"]) == {f.name for f in fields(MSISettings)}


def test_edge_overrides_and_images_merge_key_by_key():
    reg = RegistrationSettings.from_dict({"images": {"fluorescence": "vessels"}, "iterations": 50, "edges": [
        {"moving": "msi", "fixed": "fluorescence", "images": {"msi": "pca"}, "iterations": 10}]})
    edge = reg.edge("msi", "fluorescence")
    assert edge.iterations == 10 and edge.images == {"msi": "pca", "fluorescence": "vessels", "he": "haematoxylin"}
    assert reg.edge("he", "fluorescence").iterations == 50


@pytest.mark.parametrize("values, message", [
    ({"analytes": [], "normalisation": "tic"}, "at least one analyte"),
    ({"analytes": [{"name": "a", "mz": 1, "ppm": 1}] * 2, "normalisation": "tic"}, "unique"),
    ({"analytes": [{"name": "a", "mz": 1, "ppm": 1}], "normalisation": "internal_standard"}, "internal_standard"),
    ({"analytes": [{"name": "a", "mz": 1, "ppm": 1, "role": "drug"}, {"name": "b", "mz": 2, "ppm": 1, "role": "drug"}],
      "normalisation": "tic"}, "more than one analyte has role drug"),
    ({"analytes": [{"name": "a", "mz": 1, "ppm": 1}], "normalisation": "tic", "chunk": 3}, "unknown key"),
])
def test_bad_msi_settings_are_refused_with_the_key(values, message):
    with pytest.raises(InputError, match=message):
        MSISettings.from_dict(values, "msi")


def test_sigmas_must_match_the_pyramid():
    with pytest.raises(InputError, match="smoothing_sigmas_um needs one value per"):
        EdgeSettings(shrink_factors=(4, 2), smoothing_sigmas_um=(1.0, 2.0, 3.0))


def test_settings_round_trip_through_the_plain_dictionaries_rules_pass():
    c = from_config(CONFIG)
    assert MSISettings.coerce(c.msi.to_dict()) == c.msi
    edge = c.registration.edge("he", "fluorescence")
    assert EdgeSettings.coerce(edge.to_dict()) == edge
