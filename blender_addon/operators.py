"""Operators: Add VRMBG Matte, Stop, Clear Cache, Release GPU (Analyse is in `analyse`)."""

from __future__ import annotations

import os

import bpy

from . import compositor, engine, node_group, preferences, properties
from .plugin.frame_ranges import nearest_frame
from .plugin.paths import sequence_pattern


def _engine_failed(operator, error: Exception) -> set:
    operator.report({"ERROR"}, "VRMBG: " + engine.engine_error_text(error))
    return {"CANCELLED"}


class VRMBG_OT_add_matte(bpy.types.Operator):
    """Add a VRMBG matte of a plate to the compositor: the plate with the matte as its alpha"""

    bl_idname = "vrmbg.add_matte"
    bl_label = "Add VRMBG Matte"
    bl_options = {"REGISTER", "UNDO"}

    __annotations__ = dict(
        properties.schema_annotations(),
        filepath=bpy.props.StringProperty(
            name="Plate", subtype="FILE_PATH",
            description="Any frame of a plate sequence, or a movie. Empty = the image of the "
                        "active Image node"),
        match_scene=bpy.props.BoolProperty(
            name="Match scene", default=True,
            description="Set the scene's frame range and resolution to the plate's"),
    )

    def invoke(self, context, event):
        self._fill_from_preferences(context)
        if self.filepath or compositor.active_image_node(context.scene):
            return context.window_manager.invoke_props_dialog(self)
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def _fill_from_preferences(self, context) -> None:
        defaults = preferences.get(context).defaults
        for param in properties.blender_params():
            if not self.properties.is_property_set(param.name):
                setattr(self, param.name, getattr(defaults, param.name))

    def execute(self, context):
        self._fill_from_preferences(context)
        scene = context.scene
        image = self._plate_image(scene)
        if image is None:
            self.report({"ERROR"}, "VRMBG: choose a plate (any frame of a sequence, or a movie) "
                                   "or make an Image node with the plate active")
            return {"CANCELLED"}
        path = image.filepath  # kept as Blender has it ('//' relative paths stay relative)
        tree = node_group.build("VRMBG " + _shot_name(path), image, 1, 1)
        settings = tree.vrmbg
        settings.is_matte = True
        settings.uid = engine.new_uid()
        settings.plate = path if image.source == "MOVIE" else sequence_pattern(path)
        properties.copy_settings(self, settings)
        try:
            engine.open_session(tree)
        except Exception as error:
            _remove(tree)
            return _engine_failed(self, error)
        node_group.add_to_scene(scene, tree)
        if self.match_scene:
            _match_scene(scene, tree, image)
        return {"FINISHED"}

    def _plate_image(self, scene):
        if self.filepath:
            path = bpy.path.abspath(self.filepath)
            if not os.path.isfile(path):
                self.report({"ERROR"}, "VRMBG: no plate file %s" % path)
                return None
            return node_group.load_plate(path)
        node = compositor.active_image_node(scene)
        return node.image if node is not None else None


def _shot_name(path: str) -> str:
    name = os.path.basename(sequence_pattern(path))
    return name.split(".")[0].rstrip("#_-") or name


def _remove(tree: bpy.types.NodeTree) -> None:
    matte = tree.nodes[node_group.MATTE_NODE].image
    bpy.data.node_groups.remove(tree)
    if matte is not None and not matte.users:
        bpy.data.images.remove(matte)


def _match_scene(scene, tree, image) -> None:
    scene.frame_start, scene.frame_end = tree.vrmbg.first, tree.vrmbg.last
    scene.frame_current = nearest_frame(scene.frame_current, scene.frame_start, scene.frame_end)
    width, height = image.size
    if width and height:
        scene.render.resolution_x, scene.render.resolution_y = width, height
        scene.render.resolution_percentage = 100


class MatteOperator:
    """Shared poll: these operators work on the active matte of the scene's compositor."""

    @classmethod
    def poll(cls, context):
        if compositor.active_matte(context.scene) is None:
            cls.poll_message_set("Add a VRMBG matte to the compositor first")
            return False
        return True


class VRMBG_OT_stop(bpy.types.Operator):
    """Stop every matte computation (finished frames are kept)"""

    bl_idname = "vrmbg.stop"
    bl_label = "Stop"

    def execute(self, context):
        try:
            answer = engine.client().cancel().wait(timeout=30)
        except Exception as error:
            return _engine_failed(self, error)
        self.report({"INFO"}, "VRMBG: stopped %s computation(s)" % answer.get("cancelled", 0))
        return {"FINISHED"}


class VRMBG_OT_clear_cache(MatteOperator, bpy.types.Operator):
    """Delete the active matte's cached frames (they are computed again when asked for)"""

    bl_idname = "vrmbg.clear_cache"
    bl_label = "Clear Cache"

    def execute(self, context):
        tree = compositor.active_matte(context.scene)
        try:
            engine.open_session(tree)
            engine.session_of(tree).clear_cache()
        except Exception as error:
            return _engine_failed(self, error)
        node_group.reload_matte(tree)
        return {"FINISHED"}


class VRMBG_OT_release_gpu(bpy.types.Operator):
    """Unload the models from GPU (and CPU) memory; they load again when next needed"""

    bl_idname = "vrmbg.release_gpu"
    bl_label = "Release GPU"

    def execute(self, context):
        try:
            answer = engine.client().release()
        except Exception as error:
            return _engine_failed(self, error)
        self.report({"INFO"}, "VRMBG: released %s model(s)" % answer.get("released", 0))
        return {"FINISHED"}


classes = (VRMBG_OT_add_matte, VRMBG_OT_stop, VRMBG_OT_clear_cache, VRMBG_OT_release_gpu)
