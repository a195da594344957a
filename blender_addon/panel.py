"""The "VRMBG" tab in the compositor's sidebar: actions, the active matte's settings, status."""

from __future__ import annotations

import bpy

from . import compositor, engine, properties


class VRMBG_PT_matte(bpy.types.Panel):
    """VRMBG mattes of the scene's compositor"""

    bl_label = "VRMBG Matte"
    bl_idname = "VRMBG_PT_matte"
    bl_space_type = "NODE_EDITOR"
    bl_region_type = "UI"
    bl_category = "VRMBG"

    @classmethod
    def poll(cls, context):
        space = context.space_data
        return space is not None and getattr(space, "tree_type", "") == compositor.TREE_TYPE

    def draw(self, context):
        layout = self.layout
        tree = compositor.active_matte(context.scene)
        layout.operator("vrmbg.add_matte", icon="ADD")
        row = layout.row(align=True)
        row.operator("vrmbg.analyse", icon="PLAY")
        row.operator("vrmbg.stop", icon="CANCEL")
        row = layout.row(align=True)
        row.operator("vrmbg.clear_cache", icon="TRASH")
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
            fraction = engine.session_of(tree).fraction()
            if fraction is not None and hasattr(box, "progress"):
                box.progress(factor=fraction, text="%d%%" % round(fraction * 100))
        params = properties.blender_params()
        for group in dict.fromkeys(p.group for p in params):  # in schema order
            column = layout.column(heading=group)
            for param in params:
                if param.group == group:
                    column.prop(settings, param.name)


classes = (VRMBG_PT_matte,)
