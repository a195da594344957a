"""Add-on preferences: where the engine's Python is, where mattes are cached, and the settings
new mattes start from."""

import bpy

from .plugin import engine_record, worker_process
from .properties import VRMBG_DefaultSettings, blender_params

ADDON = __package__


class VRMBG_Preferences(bpy.types.AddonPreferences):
    """Engine location, cache folder and default matte settings."""

    bl_idname = ADDON

    engine_python: bpy.props.StringProperty(
        # Blender drops add-on preferences when the add-on is disabled: this one is kept in
        # the installer's record (beside the add-on's code), which outlives that.
        name="Engine Python", subtype="FILE_PATH",
        get=lambda _self: engine_record.chosen_python(),
        set=lambda _self, value: engine_record.choose_python(value),
        description="The Python of the environment vrmbg is installed in. Empty = the one "
                    "recorded by 'vrmbg install blender' (or $VRMBG_PYTHON)")
    cache_folder: bpy.props.StringProperty(
        name="Cache folder", subtype="DIR_PATH", default="",
        description="Where mattes and their temporal state are kept ('//' is the .blend's "
                    "folder). Empty: $VRMBG_CACHE, else a vrmbg-cache folder beside the "
                    ".blend; a file not saved yet uses your user cache, and its frames move "
                    "beside the .blend when it is first saved")
    allow_remote_code: bpy.props.BoolProperty(
        name="Allow downloaded model code", default=False,
        description="Let a matte whose Model setting asks for the weights' own code (Use "
                    "official model code) run the model.py downloaded with them. It runs code "
                    "from the internet as you: only for weights you trust. Only you can allow "
                    "it here; a .blend never can")
    defaults: bpy.props.PointerProperty(type=VRMBG_DefaultSettings)

    def draw(self, context) -> None:
        layout = self.layout
        layout.prop(self, "engine_python")
        layout.label(text="Engine: " + engine_python_found(self.engine_python))
        layout.prop(self, "cache_folder")
        layout.prop(self, "allow_remote_code")
        box = layout.box()
        box.label(text="New mattes start with:")
        for param in blender_params():
            if param.name != "cache_dir":
                box.prop(self.defaults, param.name)


def engine_python_found(setting: str) -> str:
    """The engine Python the add-on will start, or why it cannot (for the preferences)."""
    return worker_process.engine_python_text(bpy.path.abspath(setting) if setting else "")


def get(context=None) -> VRMBG_Preferences:
    """The add-on's preferences."""
    context = context or bpy.context
    return context.preferences.addons[ADDON].preferences


classes = (VRMBG_Preferences,)
