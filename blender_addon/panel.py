"""The "VRMBG" tab in the compositor's sidebar: actions, status, the active matte's common
settings; its keyframes; the other settings in collapsed sub-panels, one per schema group."""

from __future__ import annotations

import bpy

from . import compositor, engine, properties
from .plugin import schema


class _InCompositor:
    bl_space_type = "NODE_EDITOR"
    bl_region_type = "UI"
    bl_category = "VRMBG"

    @classmethod
    def poll(cls, context):
        space = context.space_data
        return space is not None and getattr(space, "tree_type", "") == compositor.TREE_TYPE


class VRMBG_PT_matte(_InCompositor, bpy.types.Panel):
    """VRMBG mattes of the scene's compositor"""

    bl_label = "VRMBG Matte"
    bl_idname = "VRMBG_PT_matte"

    def draw(self, context):
        layout = self.layout
        tree = compositor.active_matte(context.scene)
        layout.operator("vrmbg.add_matte", icon="ADD")
        row = layout.row(align=True)
        row.operator("vrmbg.analyse", icon="PLAY")
        row.operator("vrmbg.stop", icon="CANCEL")
        row = layout.row(align=True)
        row.operator("vrmbg.clear_cache", icon="TRASH")
        row.operator("vrmbg.prune_cache", icon="BRUSH_DATA")
        row.operator("vrmbg.release_gpu", icon="UNLINKED")
        layout.label(text=engine.status_line(tree), icon="INFO")
        if tree is None:
            return
        settings = tree.vrmbg
        box = layout.box()
        box.label(text=tree.name, icon="NODETREE")
        box.prop(settings, "auto")
        box.label(text="Plate: %s (%d-%d)" % (bpy.path.basename(settings.plate),
                                               settings.first, settings.last))
        if engine.is_open(tree):
            session = engine.session_of(tree)
            if session.cache_size_text():
                box.label(text=session.cache_size_text().capitalize(), icon="DISK_DRIVE")
            fraction = session.fraction()
            if fraction is not None and hasattr(box, "progress"):
                box.progress(factor=fraction, text="%d%%" % round(fraction * 100))
        for param in schema.common(properties.HOST):
            layout.prop(settings, param.name)


def _group_panel(group: str, params: list) -> type:
    """A collapsed sub-panel with one schema group's settings of the active matte."""
    def draw(self, context) -> None:
        tree = compositor.active_matte(context.scene)
        if tree is not None:
            for param in params:
                self.layout.prop(tree.vrmbg, param.name)
    name = "VRMBG_PT_matte_" + group.lower()
    return type(name, (_InCompositor, bpy.types.Panel), {
        "bl_label": group, "bl_idname": name, "bl_parent_id": VRMBG_PT_matte.bl_idname,
        "bl_options": {"DEFAULT_CLOSED"}, "draw": draw, "__doc__": group + " settings"})


classes = (VRMBG_PT_matte,) + tuple(_group_panel(group, params) for group, params
                                    in schema.grouped(properties.HOST).items())


class VRMBG_PT_keyframes(_InCompositor, bpy.types.Panel):
    """The active matte's keyframes: the key image and the frames it gives the matte of"""

    bl_label = "Keyframes"
    bl_idname = "VRMBG_PT_matte_keyframes"
    bl_parent_id = VRMBG_PT_matte.bl_idname

    def draw(self, context):
        tree = compositor.active_matte(context.scene)
        if tree is None:
            return
        layout = self.layout
        layout.template_ID(tree.vrmbg, "key_image", open="image.open")
        layout.prop(tree.vrmbg, "key_frames")
        row = layout.row(align=True)
        row.operator("vrmbg.set_keyframe", icon="KEY_HLT")
        row.operator("vrmbg.remove_keyframe", icon="KEY_DEHLT")
        if tree.vrmbg.keyframes:
            layout.label(text="The Keyframes path under Edit wins over this list", icon="INFO")


key_panels = (VRMBG_PT_keyframes,)  # after the matte panel, apart from the schema's groups
