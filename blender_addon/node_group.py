"""The matte node group: plate Image node, matte Image node, Set Alpha, the group's output.

Scene frame N shows plate frame N and its matte, whatever the plate's first frame: both Image
nodes get their timing from `frame_map`. The group is wired into the scene's compositor (through
`compositor`, so both compositor APIs are handled in one place).

A saved group is *guarded*: its output comes from a magenta RGB node (alpha 1, no one takes it
for a matte), and a driver whose expression names the add-on fails in Blender's log. The add-on
`unguard`s every matte when it loads a file (the output comes from Set Alpha, the driver goes),
and guards them again just before a save and when it is disabled. So a Blender without the
add-on renders magenta and says why, never an empty alpha.
"""

from __future__ import annotations

import os

import bpy

from . import compositor, frame_map
from .plugin.formats import is_movie
from .plugin.paths import frame_file

PLATE_NODE = "Plate"
MATTE_NODE = "Matte"
GUARD_NODE = "Without VRMBG"
NOTICE_NODE = "VRMBG notice"
MISSING_COLOUR = (1.0, 0.0, 1.0, 1.0)
NOTICE = ('vrmbg_addon_missing("the VRMBG add-on is not enabled in this Blender, so this matte '
          'renders magenta: install the VRMBG extension")')


def load_plate(path: str) -> bpy.types.Image:
    """The plate as a Blender image: a movie, or the sequence that frame file `path` is in."""
    image = bpy.data.images.load(path, check_existing=True)
    image.source = "MOVIE" if is_movie(path) else "SEQUENCE"
    return image


def matte_image(name: str) -> bpy.types.Image:
    """A Non-Color image for a matte sequence (its files may not exist yet)."""
    image = bpy.data.images.new(name, 1, 1, float_buffer=True, is_data=True)
    image.source = "SEQUENCE"
    image.colorspace_settings.name = "Non-Color"
    return image


def build(name: str, plate: bpy.types.Image, first: int, last: int,
          matte_pattern: str = "") -> bpy.types.NodeTree:
    """A matte node group for `plate` (frames first..last), its matte read from `matte_pattern`."""
    tree = compositor.new_tree(name)
    nodes, links = tree.nodes, tree.links
    plate_node = nodes.new("CompositorNodeImage")
    plate_node.name = plate_node.label = PLATE_NODE
    plate_node.image = plate
    plate_node.location = (-400, 100)
    matte_node = nodes.new("CompositorNodeImage")
    matte_node.name = matte_node.label = MATTE_NODE
    matte_node.image = matte_image(name + " matte")
    matte_node.location = (-400, -200)
    set_alpha = nodes.new("CompositorNodeSetAlpha")
    compositor.set_alpha_replace(set_alpha)
    output = nodes.new("NodeGroupOutput")
    output.location = (300, 0)
    links.new(plate_node.outputs["Image"], set_alpha.inputs["Image"])
    links.new(matte_node.outputs["Alpha"], set_alpha.inputs["Alpha"])
    unguard(tree)
    set_frames(tree, first, last)
    if matte_pattern:
        set_matte_pattern(tree, matte_pattern)
    return tree


def _guard_nodes(tree: bpy.types.NodeTree) -> tuple:
    """The magenta node and the notice frame (made when missing: older files)."""
    nodes = tree.nodes
    colour = nodes.get(GUARD_NODE)
    if colour is None:
        colour = nodes.new("CompositorNodeRGB")
        colour.name = colour.label = GUARD_NODE
        colour.outputs[0].default_value = MISSING_COLOUR
        colour.location = (0, 250)
    notice = nodes.get(NOTICE_NODE)
    if notice is None:
        notice = nodes.new("NodeFrame")
        notice.name = NOTICE_NODE
        notice.label = "Without the VRMBG add-on this group renders magenta"
        notice.location = (0, 400)
    return colour, notice


def _output(tree: bpy.types.NodeTree) -> bpy.types.Node:
    return next(node for node in tree.nodes if node.bl_idname == "NodeGroupOutput")


def guard(tree: bpy.types.NodeTree) -> None:
    """What a Blender without the add-on renders: magenta, and the notice in its log."""
    colour, notice = _guard_nodes(tree)
    tree.links.new(colour.outputs[0], _output(tree).inputs[0])
    if tree.animation_data is None or not tree.animation_data.drivers.find(
            notice.path_from_id("label_size")):
        driver = notice.driver_add("label_size").driver
        driver.type, driver.expression = "SCRIPTED", NOTICE


def unguard(tree: bpy.types.NodeTree) -> None:
    """What the add-on renders: the plate with the matte as its alpha."""
    _colour, notice = _guard_nodes(tree)
    tree.links.new(_set_alpha(tree).outputs["Image"], _output(tree).inputs[0])
    notice.driver_remove("label_size")


def _set_alpha(tree: bpy.types.NodeTree) -> bpy.types.Node:
    return next(node for node in tree.nodes if node.bl_idname == "CompositorNodeSetAlpha")


def set_frames(tree: bpy.types.NodeTree, first: int, last: int) -> None:
    """Time both Image nodes so scene frame N shows plate frame N (first..last)."""
    plate_node = tree.nodes[PLATE_NODE]
    movie = plate_node.image is not None and plate_node.image.source == "MOVIE"
    plate_timing = (frame_map.movie_timing if movie else frame_map.sequence_timing)(first, last)
    _apply_timing(plate_node, plate_timing)
    _apply_timing(tree.nodes[MATTE_NODE], frame_map.sequence_timing(first, last))
    tree.vrmbg.first, tree.vrmbg.last = first, last


def _apply_timing(node: bpy.types.Node, timing: frame_map.NodeTiming) -> None:
    node.frame_start = timing.frame_start
    node.frame_duration = timing.frame_duration
    node.frame_offset = timing.frame_offset
    node.use_cyclic = timing.cyclic


def set_matte_pattern(tree: bpy.types.NodeTree, pattern: str) -> None:
    """Point the matte Image node at the engine's matte sequence (a `####` pattern)."""
    image = tree.nodes[MATTE_NODE].image
    path = frame_file(pattern, tree.vrmbg.first)
    if image.filepath != path:
        image.filepath = path
    tree.vrmbg.matte_pattern = pattern
    reload_matte(tree)


def reload_matte(tree: bpy.types.NodeTree) -> None:
    """Read the matte frames again (a frame just finished) and redraw the compositor."""
    image = tree.nodes[MATTE_NODE].image
    if image is not None and os.path.isdir(os.path.dirname(bpy.path.abspath(image.filepath))):
        image.reload()
    tree.update_tag()


def plate_image(tree: bpy.types.NodeTree) -> bpy.types.Image | None:
    """The plate image of a matte group."""
    return tree.nodes[PLATE_NODE].image


def add_to_scene(scene: bpy.types.Scene, tree: bpy.types.NodeTree) -> bpy.types.Node:
    """A group node for `tree` in the scene's compositor, feeding its output and its viewer."""
    scene_tree = compositor.scene_tree(scene, create=True)
    group = scene_tree.nodes.new("CompositorNodeGroup")
    group.node_tree = tree
    group.label = tree.name
    group.location = (200, 100 - 200 * (len(compositor.matte_nodes(scene)) - 1))
    scene_tree.links.new(group.outputs[0], compositor.scene_output(scene_tree).inputs[0])
    scene_tree.links.new(group.outputs[0], compositor.viewer(scene_tree).inputs[0])
    scene_tree.nodes.active = group
    if bpy.app.background:
        compositor.configure_headless(scene)
    return group
