"""Cases for plugin/host_colour.py, plain asserts so they also run in hosts' Python 3.9.

pytest runs every `case_*` function (tests/hosts/test_host_colour.py); under another interpreter:
    python3.9 tests/support/host_colour_cases.py FOLDER PACKAGE
imports PACKAGE.host_colour from FOLDER (a copy of plugin/, as installers make) and runs them.
Standard library only.
"""

import os
import sys
import tempfile

NUKE_DEFAULT_TEXT = """ocio_profile_version: 1
search_path: luts
roles:
  color_picking: sRGB
  data: raw
  scene_linear: linear
displays:
  default:
    - !<View> {name: None, colorspace: raw}
colorspaces:
  - !<ColorSpace>
    name: linear
    isdata: false
  - !<ColorSpace>
    name: sRGB
    to_reference: !<FileTransform> {src: srgb.spi1d, interpolation: linear}
  - !<ColorSpace>
    name: Gamma1.8
    to_reference: !<ExponentTransform> {value: [1.8, 1.8, 1.8, 1]}
  - !<ColorSpace>
    name: raw
    isdata: true
"""

BLENDER_TEXT = """ocio_profile_version: 2
roles:
  color_picking: sRGB
  data: Non-Color
  scene_linear: Linear Rec.709
colorspaces:
  - !<ColorSpace>
    name: Linear Rec.709
    aliases: [Linear, lin_rec709]
  - !<ColorSpace>
    name: "sRGB"
    aliases: [srgb_display]
  - !<ColorSpace>
    name: Non-Color
    isdata: true
"""

STUDIO_URI = "ocio://studio-config-v1.0.0_aces-v1.3_ocio-v2.1"


def raises(function, *args, **kwargs) -> str:
    """The ValueError message `function` raises (fails when it raises nothing)."""
    try:
        function(*args, **kwargs)
    except ValueError as exc:
        text = str(exc)
        assert text and "\n" not in text, repr(text)
        return text
    raise AssertionError(f"{function.__name__} did not raise ValueError")


def write(path: str, text: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


class Folders:
    """A fake Nuke install (nuke-default and aces_1.2 configs) and a fake Blender folder."""

    def __init__(self, root: str) -> None:
        self.nuke = os.path.join(root, "Nuke 15.1v3 ü")
        configs = os.path.join(self.nuke, "plugins", "OCIOConfigs", "configs")
        self.nuke_default = write(os.path.join(configs, "nuke-default", "config.ocio"),
                                  NUKE_DEFAULT_TEXT)
        self.aces = write(os.path.join(configs, "aces_1.2", "config.ocio"), NUKE_DEFAULT_TEXT)
        self.blender = os.path.join(root, "blender 4.2", "4.2")
        self.blender_config = write(os.path.join(self.blender, "datafiles", "colormanagement",
                                                 "config.ocio"), BLENDER_TEXT)
        self.custom = write(os.path.join(root, "show configs", "my show.ocio"), BLENDER_TEXT)


# ---------------------------------------------------------------- Nuke root knobs

def case_nuke_colour_management_uses_nuke_default(hc, folders):
    assert hc.nuke_config({"colorManagement": "Nuke", "OCIO_config": "aces_1.2"},
                          folders.nuke, {}) == folders.nuke_default
    assert hc.nuke_config({}, folders.nuke, {}) == folders.nuke_default  # older scripts


def case_nuke_named_configs_live_in_the_install_folder(hc, folders):
    root = {"colorManagement": "OCIO", "OCIO_config": "aces_1.2"}
    assert hc.nuke_config(root, folders.nuke, {}) == folders.aces
    assert "install folder" in raises(hc.nuke_config, root, "", {})
    message = raises(hc.nuke_config, {"colorManagement": "OCIO", "OCIO_config": "aces_1.1"},
                     folders.nuke, {})
    assert os.path.join("configs", "aces_1.1", "config.ocio") in message


def case_nuke_builtin_configs_become_ocio_uris(hc, folders):
    for name in ("cg-config-v1.0.0_aces-v1.3_ocio-v2.1",
                 "studio-config-v1.0.0_aces-v1.3_ocio-v2.1"):
        root = {"colorManagement": "OCIO", "OCIO_config": "fn-nuke_" + name}
        assert hc.nuke_config(root, "", {}) == "ocio://" + name
    root = {"colorManagement": "OCIO", "OCIO_config": "ocio://cg-config-latest"}
    assert hc.nuke_config(root, "", {}) == "ocio://cg-config-latest"


def case_nuke_custom_config_path(hc, folders):
    root = {"colorManagement": "OCIO", "OCIO_config": "custom",
            "customOCIOConfigPath": folders.custom}
    assert hc.nuke_config(root, folders.nuke, {}) == folders.custom
    root["customOCIOConfigPath"] = ""
    assert "customOCIOConfigPath is empty" in raises(hc.nuke_config, root, folders.nuke, {})
    root["customOCIOConfigPath"] = folders.custom + ".missing"
    message = raises(hc.nuke_config, root, folders.nuke, {})
    assert folders.custom + ".missing" in message and "customOCIOConfigPath" in message


def case_ocio_environment_variable_overrides_the_script(hc, folders):
    root = {"colorManagement": "OCIO", "OCIO_config": "aces_1.2"}
    assert hc.nuke_config(root, folders.nuke, {"OCIO": folders.custom}) == folders.custom
    assert hc.nuke_config({}, "", {"OCIO": "ocio://cg-config-latest"}) == "ocio://cg-config-latest"
    message = raises(hc.nuke_config, root, folders.nuke, {"OCIO": "/no/such/config.ocio"})
    assert "$OCIO" in message and "/no/such/config.ocio" in message


def case_nuke_bad_root_knobs_say_what_is_wrong(hc, folders):
    assert "colorManagement" in raises(hc.nuke_config, {"colorManagement": "ACES"}, "", {})
    assert "OCIO_config is empty" in raises(hc.nuke_config, {"colorManagement": "OCIO"}, "", {})


# ---------------------------------------------------------------- Read node colorspace

def case_read_default_forms(hc, folders):
    assert hc.nuke_read_colorspace("default (ACEScg)", config=STUDIO_URI) == "ACEScg"
    assert hc.nuke_read_colorspace("default (linear)", config=folders.nuke_default) == "linear"
    assert hc.nuke_read_colorspace("default", config=folders.nuke_default,
                                   file_default="sRGB") == "sRGB"
    assert "default for its file type" in raises(hc.nuke_read_colorspace, "default")
    assert "names no colour space" in raises(hc.nuke_read_colorspace, "default ()")


def case_read_roles(hc, folders):
    assert hc.nuke_read_colorspace("scene_linear", config=STUDIO_URI) == "scene_linear"
    assert hc.nuke_read_colorspace("scene_linear (ACEScg)", config=STUDIO_URI) == "scene_linear"
    assert hc.nuke_read_colorspace("color_picking", config=folders.nuke_default) == \
        "color_picking"
    assert hc.nuke_read_colorspace("compositing_log", config=STUDIO_URI) == "compositing_log"


def case_read_plain_names_keep_their_brackets(hc, folders):
    for name in ("ARRI LogC3 (EI800)", "sRGB Encoded Rec.709 (sRGB)", "Linear Rec.709 (sRGB)"):
        assert hc.nuke_read_colorspace(name, config=STUDIO_URI) == name


def case_read_nuke_names_are_checked_against_the_config(hc, folders):
    config = folders.nuke_default
    assert hc.nuke_read_colorspace("Gamma1.8", config=config) == "Gamma1.8"
    assert hc.nuke_read_colorspace("gamma1.8", config=config) == "Gamma1.8"  # as OCIO matches
    message = raises(hc.nuke_read_colorspace, "Gamma 1.8", config=config)
    assert "'Gamma 1.8'" in message and config in message and "'Gamma1.8'" in message
    assert "no colorspace" in raises(hc.nuke_read_colorspace, "  ", config=config)


def case_nuke_settings_for_the_engine(hc, folders):
    root = {"colorManagement": "Nuke"}
    assert hc.nuke_colour_settings(root, "default (linear)", nuke_dir=folders.nuke,
                                   environ={}) == {"ocio": folders.nuke_default,
                                                   "input_colorspace": "linear"}
    root = {"colorManagement": "OCIO",
            "OCIO_config": "fn-nuke_cg-config-v1.0.0_aces-v1.3_ocio-v2.1"}
    assert hc.nuke_colour_settings(root, "ACEScct", environ={}) == {
        "ocio": "ocio://cg-config-v1.0.0_aces-v1.3_ocio-v2.1", "input_colorspace": "ACEScct"}


# ---------------------------------------------------------------- Blender

def case_blender_uses_its_own_config_unless_ocio_is_set(hc, folders):
    assert hc.blender_config(folders.blender, {}) == folders.blender_config
    assert hc.blender_config(folders.blender, {"OCIO": folders.custom}) == folders.custom
    assert "resource folder" in raises(hc.blender_config, "", {})
    message = raises(hc.blender_config, folders.blender + "-missing", {})
    assert "Blender's own config" in message


def case_blender_image_colour_spaces(hc, folders):
    def settings(name):
        return hc.blender_colour_settings(name, resource_local=folders.blender, environ={})

    assert settings("sRGB") == {"ocio": folders.blender_config, "input_colorspace": "sRGB"}
    assert settings("Linear Rec.709")["input_colorspace"] == "Linear Rec.709"
    assert settings("Non-Color")["input_colorspace"] == "Non-Color"
    assert settings("linear")["input_colorspace"] == "Linear"  # an alias
    message = raises(settings, "Linear Rec.2020")
    assert "'Linear Rec.709'" in message and folders.blender_config in message
    assert "no colour space" in raises(settings, "")


def case_config_names_reads_spaces_aliases_and_roles(hc, folders):
    names = hc.config_names(folders.blender_config)
    assert names["spaces"] == ["Linear Rec.709", "sRGB", "Non-Color"]
    assert names["aliases"] == ["Linear", "lin_rec709", "srgb_display"]
    assert names["roles"] == ["color_picking", "data", "scene_linear"]
    assert hc.config_names(folders.nuke_default)["spaces"] == ["linear", "sRGB", "Gamma1.8", "raw"]


CASES = [value for name, value in sorted(globals().items()) if name.startswith("case_")]


def run_all(hc) -> int:
    """Run every case against the module `hc`; returns how many ran."""
    with tempfile.TemporaryDirectory() as root:
        folders = Folders(root)
        for case in CASES:
            case(hc, folders)
    return len(CASES)


if __name__ == "__main__":
    import importlib

    sys.path.insert(0, sys.argv[1])
    module = importlib.import_module(sys.argv[2] + ".host_colour")
    print(f"{run_all(module)} host colour cases passed on Python {sys.version.split()[0]}")
