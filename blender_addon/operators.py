"""Operators: Add VRMBG Matte, Stop, Clear Cache, Prune Cache, Release GPU, Set/Remove keyframe
here (Analyse is in `analyse`)."""

from __future__ import annotations

import os

import bpy

from . import compositor, engine, handlers, keys, node_group, preferences, properties
from .plugin import schema
from .plugin.frame_ranges import format_frame_ranges, nearest_frame
from .plugin.paths import sequence_pattern, shot_name


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
        in_background=bpy.props.BoolProperty(
            options={"HIDDEN", "SKIP_SAVE"},
            description="Start the engine in the background (the matte appears at once, the "
                        "panel's status follows the start); scripts wait instead"),
    )

    def invoke(self, context, event):
        self.in_background = True
        self._fill_from_preferences(context)
        if self.filepath or compositor.active_image_node(context.scene):
            return context.window_manager.invoke_props_dialog(self)
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def draw(self, context) -> None:
        """Only the common settings are asked; the others start from the preferences and
        are in the panel's collapsed groups."""
        self.layout.prop(self, "match_scene")
        for param in schema.common(properties.HOST):
            self.layout.prop(self, param.name)

    def _fill_from_preferences(self, context) -> None:
        defaults = preferences.get(context).defaults
        for param in properties.blender_params():
            if not self.properties.is_property_set(param.name):
                setattr(self, param.name, getattr(defaults, param.name))

    def execute(self, context):
        self._fill_from_preferences(context)
        scene = context.scene
        if self.filepath and not os.path.isfile(bpy.path.abspath(self.filepath)):
            self.report({"ERROR"}, "VRMBG: no plate file %s" % bpy.path.abspath(self.filepath))
            return {"CANCELLED"}
        image = self._plate_image(scene)
        if image is None:
            self.report({"ERROR"}, "VRMBG: choose a plate (any frame of a sequence, or a movie) "
                                   "or make an Image node with the plate active")
            return {"CANCELLED"}
        path = image.filepath  # kept as Blender has it ('//' relative paths stay relative)
        tree = node_group.build("VRMBG " + shot_name(path), image, 1, 1)
        settings = tree.vrmbg
        settings.is_matte = True
        settings.uid = engine.new_uid()
        settings.plate = path if image.source == "MOVIE" else sequence_pattern(path)
        properties.copy_settings(self, settings)
        try:  # from the UI the engine starts behind (the status says so); a script waits
            opening = engine.session_of(tree).open_async()
            if not self.in_background:
                engine.apply_opened(tree, opening.wait())
        except Exception as error:
            _remove(tree)
            return _engine_failed(self, error)
        node_group.add_to_scene(scene, tree)
        if not self.in_background:
            if self.match_scene:
                _match_scene(scene, tree, image)
            return {"FINISHED"}
        name, scene_name, match = tree.name, scene.name, self.match_scene
        opening.add_done_callback(lambda answer: engine.post(
            lambda: _opened_behind(name, scene_name, match, answer)))
        return {"FINISHED"}

    def _plate_image(self, scene):
        if self.filepath:
            return node_group.load_plate(bpy.path.abspath(self.filepath))
        node = compositor.active_image_node(scene)
        return node.image if node is not None else None


def _opened_behind(name: str, scene_name: str, match: bool, answer: dict) -> None:
    """A matte added from the UI: its frames (and the scene's range) once the engine is up."""
    tree, scene = bpy.data.node_groups.get(name), bpy.data.scenes.get(scene_name)
    if tree is not None and answer.get("event") != "error":
        engine.apply_opened(tree, answer)
        if match and scene is not None:
            _match_scene(scene, tree, node_group.plate_image(tree))


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
        if not engine.running():
            self.report({"INFO"}, "VRMBG: nothing is being computed")
            return {"CANCELLED"}
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


class VRMBG_OT_prune_cache(MatteOperator, bpy.types.Operator):
    """Delete the active matte's cached frames of other settings, oldest first, until its
    shot's cache fits the size kept (the frames shown now stay)"""

    bl_idname = "vrmbg.prune_cache"
    bl_label = "Prune Cache"

    keep: bpy.props.StringProperty(
        name="Keep", default="0",
        description="How much of other settings' frames to keep, e.g. 500M or 20G; 0 keeps "
                    "only the frames of the settings shown now")
    whole_cache: bpy.props.BoolProperty(
        name="Whole cache folder",
        description="Prune every shot in the cache folder, not only this matte's")

    def invoke(self, context, event):
        return context.window_manager.invoke_props_dialog(self)

    def execute(self, context):
        session = engine.session_of(compositor.active_matte(context.scene))
        try:
            session.prune_cache(self.keep, whole_cache=self.whole_cache)
        except Exception as error:
            return _engine_failed(self, error)
        self.report({"INFO"}, "VRMBG: " + session.status_line())
        return {"FINISHED"}


class VRMBG_OT_release_gpu(bpy.types.Operator):
    """Unload the models from GPU (and CPU) memory; they load again when next needed"""

    bl_idname = "vrmbg.release_gpu"
    bl_label = "Release GPU"

    def execute(self, context):
        if not engine.running():
            self.report({"INFO"}, "VRMBG: no model is loaded")
            return {"CANCELLED"}
        tree = compositor.active_matte(context.scene)
        try:  # through the matte's session, whose status then says so
            count = engine.session_of(tree).release_models() if tree is not None \
                else engine.client().release().get("released", 0)
        except Exception as error:
            return _engine_failed(self, error)
        self.report({"INFO"}, "VRMBG: released %s model(s)" % count)
        return {"FINISHED"}


class _Keyframe(MatteOperator):
    keep = True  # set (True) or remove the keyframe at the current frame

    def execute(self, context):
        tree, frame = compositor.active_matte(context.scene), context.scene.frame_current
        try:
            if not tree.vrmbg.first <= frame <= tree.vrmbg.last:
                raise ValueError("frame %d is not a frame of the shot (%d-%d)"
                                 % (frame, tree.vrmbg.first, tree.vrmbg.last))
            frames = set(keys.listed(tree))
            if not self.keep and frame not in frames:
                self.report({"INFO"}, "VRMBG: frame %d is not a keyframe" % frame)
                return {"CANCELLED"}
            frames = frames | {frame} if self.keep else frames - {frame}
            tree.vrmbg.key_frames = format_frame_ranges(frames)  # its files follow
            engine.write_keys(tree)
        except (ValueError, OSError) as error:
            self.report({"ERROR"}, "VRMBG: keyframes: %s" % error)
            return {"CANCELLED"}
        if tree.vrmbg.auto and not bpy.app.background:
            handlers.request_frame(tree, frame)
        return {"FINISHED"}


class VRMBG_OT_set_keyframe(_Keyframe, bpy.types.Operator):
    """Make the current frame a keyframe: its matte is the key image's, and the frames after it
    continue from it (pressed again, its key is read again from the key image)"""

    bl_idname = "vrmbg.set_keyframe"
    bl_label = "Set keyframe here"


class VRMBG_OT_remove_keyframe(_Keyframe, bpy.types.Operator):
    """Remove the keyframe at the current frame: from it on, the frames are the model's again"""

    bl_idname = "vrmbg.remove_keyframe"
    bl_label = "Remove keyframe here"
    keep = False


classes = (VRMBG_OT_add_matte, VRMBG_OT_stop, VRMBG_OT_clear_cache, VRMBG_OT_prune_cache,
           VRMBG_OT_release_gpu, VRMBG_OT_set_keyframe, VRMBG_OT_remove_keyframe)
