"""The typed settings (plugin/settings.py): one frozen field per schema parameter, coerced and
checked by the schema, to and from the wire's mapping and the command line's args."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from vrmbg.core.cli.options import add_schema_arguments
from vrmbg.plugin import schema
from vrmbg.plugin.settings import KIND_TYPES, Settings, UnknownSetting


def test_the_fields_are_the_schema_in_order_with_its_types_and_defaults():
    fields = dataclasses.fields(Settings)
    assert [f.name for f in fields] == [p.name for p in schema.PARAMS]
    for field, param in zip(fields, schema.PARAMS):
        assert field.type == KIND_TYPES[param.kind].__name__, param.name
        assert field.default == param.default, param.name
    assert Settings().to_mapping() == schema.defaults()


def test_values_are_coerced_and_checked_by_the_schema():
    settings = Settings.from_mapping({"resolution": "512", "trust_remote_code": "yes",
                                      "upsample_eps": "0.01"})
    assert (settings.resolution, settings.trust_remote_code, settings.upsample_eps) == \
        (512, True, 0.01)
    assert settings.changed() == {"resolution": 512, "trust_remote_code": True,
                                  "upsample_eps": 0.01}
    with pytest.raises(ValueError, match="precision: 'fp8' is not one of"):
        Settings(precision="fp8")
    with pytest.raises(ValueError, match="resolution: -5 is below the minimum"):
        settings.replace(resolution=-5)


def test_unknown_names_are_refused_with_a_plain_message():
    with pytest.raises(UnknownSetting) as raised:
        Settings.from_mapping({"colourspace": "ACEScg", "resolutoin": 5})
    assert str(raised.value) == "unknown setting(s): colourspace, resolutoin"
    assert isinstance(raised.value, KeyError)  # what schema.resolve raised before
    with pytest.raises(UnknownSetting):
        Settings().replace(colourspace="ACEScg")


def test_settings_are_frozen_hashable_and_round_trip_the_wire():
    settings = Settings(model="demo", device="cpu")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.model = "other"  # type: ignore[misc]
    assert Settings.from_mapping(settings.to_mapping()) == settings
    assert len({settings, Settings(model="demo", device="cpu")}) == 1
    assert schema.resolve(settings.to_mapping()) == settings.to_mapping()


def test_settings_from_command_line_args_by_schema_name():
    parser = argparse.ArgumentParser()
    add_schema_arguments(parser)
    args = parser.parse_args(["--resolution", "256", "--device", "cpu", "--detect-cuts"])
    settings = Settings.from_args(args)
    assert (settings.resolution, settings.device, settings.detect_cuts) == (256, "cpu", True)
    assert settings.preview_resolution == 0  # not a CLI setting: the default
    only = Settings.from_args(args, names=["device"])
    assert (only.device, only.resolution) == ("cpu", 0)
