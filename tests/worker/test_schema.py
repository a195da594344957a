"""The one parameter schema: every host gets the same names, defaults and validation."""

import argparse

import pytest

from vrmbg.core.cli.options import add_schema_arguments, settings_from
from vrmbg.core.errors import UsageError
from vrmbg.plugin import schema


def test_every_param_is_well_formed():
    names = [p.name for p in schema.PARAMS]
    assert len(names) == len(set(names)), "duplicate setting names"
    for p in schema.PARAMS:
        assert p.name.isidentifier(), p.name
        assert p.kind in schema.KINDS, p.name
        assert p.help and p.label, p.name
        if p.kind == "enum":
            assert p.default in p.choices, p.name
        # the default must pass the schema's own validation
        assert schema.coerce(p, p.default) == p.default, p.name


def test_cli_flags_follow_schema_defaults_and_choices():
    parser = argparse.ArgumentParser()
    add_schema_arguments(parser)
    args = parser.parse_args([])
    defaults = settings_from(args).to_mapping()
    assert {name: defaults[name] for name in schema.defaults(p.name for p in schema.for_host("cli"))} \
        == schema.defaults(p.name for p in schema.for_host("cli"))
    args = parser.parse_args(["--device", "cpu", "--input-colorspace", "ACEScg",
                              "--trust-remote-code", "--resolution", "512"])
    values = settings_from(args)
    assert values.device == "cpu"
    assert values.input_colorspace == "ACEScg"
    assert values.trust_remote_code is True
    assert values.resolution == 512
    with pytest.raises(UsageError, match="resolution"):
        settings_from(parser.parse_args(["--resolution", "-5"]))
    with pytest.raises(SystemExit):
        parser.parse_args(["--device", "tpu"])


def test_host_only_params_are_not_cli_flags():
    parser = argparse.ArgumentParser()
    add_schema_arguments(parser)
    flags = {a for action in parser._actions for a in action.option_strings}
    for p in schema.PARAMS:
        assert (p.flag in flags) == ("cli" in p.hosts), p.name


@pytest.mark.parametrize("name,value,expected", [
    ("resolution", "512", 512),
    ("trust_remote_code", "yes", True),
    ("trust_remote_code", "0", False),
    ("precision", "bf16", "bf16"),
])
def test_coerce_accepts_host_strings(name, value, expected):
    assert schema.coerce(schema.get(name), value) == expected


@pytest.mark.parametrize("name,value,needle", [
    ("resolution", "-5", "minimum"),
    ("resolution", "big", "number"),
    ("precision", "fp8", "not one of"),
    ("trust_remote_code", "maybe", "true/false"),
])
def test_coerce_rejects_with_the_setting_named(name, value, needle):
    with pytest.raises(ValueError) as err:
        schema.coerce(schema.get(name), value)
    assert name in str(err.value) and needle in str(err.value)


def test_resolve_rejects_unknown_settings():
    with pytest.raises(KeyError, match="colourspace"):
        schema.resolve({"colourspace": "ACEScg"})
    assert schema.resolve({})["model_colorspace"] == "sRGB Encoded Rec.709 (sRGB)"
