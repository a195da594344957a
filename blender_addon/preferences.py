"""Add-on preferences: where the engine's Python is, where mattes are cached, and the settings
new mattes start from."""

import bpy

from .plugin import client
from .properties import VRMBG_DefaultSettings, blender_params

ADDON = __package__
DEFAULT_CACHE = "//vrmbg-cache/"


class VRMBG_Preferences(bpy.types.AddonPreferences):
    """Engine location, cache folder and default matte settings."""

    bl_idname = ADDON

    engine_python: bpy.props.StringProperty(
        name="Engine Python", subtype="FILE_PATH", default="",
        description="The Python of the environment vrmbg is installed in. Empty = the one "
                    "recorded by 'vrmbg install blender' (or $VRMBG_PYTHON)")
    cache_folder: bpy.props.StringProperty(
        name="Cache folder", subtype="DIR_PATH", default=DEFAULT_CACHE,
        description="Where mattes and their temporal state are kept. '//' is the folder of "
                    "the .blend file; an unsaved file uses the engine's user cache")
    defaults: bpy.props.PointerProperty(type=VRMBG_DefaultSettings)

    def draw(self, context) -> None:
        layout = self.layout
        layout.prop(self, "engine_python")
        layout.label(text="Engine: " + engine_python_found(self.engine_python))
        layout.prop(self, "cache_folder")
        box = layout.box()
        box.label(text="New mattes start with:")
        for param in blender_params():
            if param.name != "cache_dir":
                box.prop(self.defaults, param.name)


def engine_python_found(setting: str) -> str:
    """The engine Python the add-on will start, or why there is none (for the preferences)."""
    try:
        return client.find_engine_python(bpy.path.abspath(setting) if setting else "")
    except client.EngineError as error:
        return error.message


def get(context=None) -> VRMBG_Preferences:
    """The add-on's preferences."""
    context = context or bpy.context
    return context.preferences.addons[ADDON].preferences


classes = (VRMBG_Preferences,)
