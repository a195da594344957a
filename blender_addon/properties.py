"""Blender properties generated from the parameter schema, and the settings each matte keeps.

Every schema parameter whose hosts include "blender" becomes a property with the same name,
default, choices, limits and help (Blender's own where the schema has one), so the panel, the
Add Matte operator, the preferences and the command line all speak of the same settings. `MatteSettings` hangs on each matte's node group
(`node_tree.vrmbg`), so a matte keeps its settings in the .blend.
"""

from __future__ import annotations

from typing import Any, Callable, List

import bpy

from .plugin import schema
from .plugin.settings import Settings

HOST = "blender"  # the schema's name for this host (its settings, its help)
# Settings that only tell where things go (not what the matte is) get a folder picker.
_FOLDERS = ("cache_dir",)


def blender_params() -> list:
    """The schema parameters Blender shows, in schema order."""
    return schema.for_host(HOST)


def schema_property(param, update: Callable | None = None) -> Any:
    """One bpy property for one schema parameter (same name, default, choices and help)."""
    common = {"name": param.label, "description": param.help_for(HOST)}
    if update is not None:
        common["update"] = update
    if param.kind == "bool":
        return bpy.props.BoolProperty(default=bool(param.default), **common)
    if param.kind == "int":
        return bpy.props.IntProperty(default=int(param.default), **_limits(param, int), **common)
    if param.kind == "float":
        return bpy.props.FloatProperty(default=float(param.default), **_limits(param, float),
                                       **common)
    if param.kind == "enum":
        items = [(choice, choice, "") for choice in param.choices]
        return bpy.props.EnumProperty(items=items, default=param.default, **common)
    if param.kind == "path":
        subtype = "DIR_PATH" if param.name in _FOLDERS else "FILE_PATH"
        return bpy.props.StringProperty(default=str(param.default), subtype=subtype, **common)
    return bpy.props.StringProperty(default=str(param.default), **common)


def _limits(param, number: type) -> dict:
    limits = {}
    if param.minimum is not None:
        limits["min"] = number(param.minimum)
    if param.maximum is not None:
        limits["max"] = number(param.maximum)
    return limits


def schema_annotations(update: Callable | None = None) -> dict:
    """Property annotations for every Blender schema parameter, by name."""
    return {param.name: schema_property(param, update) for param in blender_params()}


def settings_of(holder) -> Settings:
    """The settings held by a property group or operator (the others at their defaults)."""
    return Settings.from_mapping({p.name: getattr(holder, p.name) for p in blender_params()})


def copy_settings(source, target) -> None:
    """Copy every schema setting from one holder (preferences, operator) to another."""
    for param in blender_params():
        setattr(target, param.name, getattr(source, param.name))


# Who hears that a matte's setting changed (the engine glue, set at registration): this
# module is imported by the engine glue, so it calls back instead of importing it.
_WATCHERS: List[Callable[[Any], None]] = []


def watch_settings(watcher: Callable[[Any], None] | None) -> None:
    """Call `watcher(node_tree)` when a matte's setting changes (None: nobody)."""
    _WATCHERS[:] = [watcher] if watcher is not None else []


def _settings_changed(self, context) -> None:
    for watcher in _WATCHERS:
        watcher(self.id_data)


class VRMBG_DefaultSettings(bpy.types.PropertyGroup):
    """The schema settings new mattes start from (kept in the add-on preferences)."""

    __annotations__ = schema_annotations()


class VRMBG_MatteSettings(bpy.types.PropertyGroup):
    """One matte's settings and the shot it was made for, kept on its node group."""

    __annotations__ = dict(
        schema_annotations(update=_settings_changed),
        is_matte=bpy.props.BoolProperty(default=False, options={"HIDDEN"}),
        plate=bpy.props.StringProperty(
            name="Plate", subtype="FILE_PATH",
            description="The plate sequence (#### pattern) or movie this matte is made for"),
        uid=bpy.props.StringProperty(options={"HIDDEN"}),
        first=bpy.props.IntProperty(name="First frame", options={"HIDDEN"}),
        last=bpy.props.IntProperty(name="Last frame", options={"HIDDEN"}),
        matte_pattern=bpy.props.StringProperty(
            name="Matte sequence", subtype="FILE_PATH",
            description="Where the engine writes this matte's frames (#### pattern)"),
        key_image=bpy.props.PointerProperty(
            type=bpy.types.Image, name="Key image", update=_settings_changed,
            description="The artist's mattes for the keyframes: an image sequence (its frame "
                        "N is keyframe N) or one image (the key of each frame listed); its "
                        "alpha, or its grey when it has none"),
        key_frames=bpy.props.StringProperty(
            name="Keyframes at", update=_settings_changed,
            description="Frames whose matte is the key image's, e.g. 1004,1050 (the frames "
                        "after each continue from it; none before changes)"),
        auto=bpy.props.BoolProperty(
            name="Auto", default=True,
            description="Compute the matte of the current frame in the background when the "
                        "frame changes"),
    )


classes = (VRMBG_DefaultSettings, VRMBG_MatteSettings)


def register_pointers() -> None:
    """Attach the matte settings to every node tree (only VRMBG groups use them)."""
    bpy.types.NodeTree.vrmbg = bpy.props.PointerProperty(type=VRMBG_MatteSettings)


def unregister_pointers() -> None:
    """Detach what `register_pointers` attached."""
    del bpy.types.NodeTree.vrmbg
