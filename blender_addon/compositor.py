"""The scene's compositor in every supported Blender: the one place that knows the API changed.

Blender 5.x composites with a node group assigned to `scene.compositing_node_group` and ends it
in a Group Output; Blender 4.2-4.5 uses the scene's own `scene.node_tree` (with `use_nodes`) and
a Composite node. Set Alpha's mode became an input socket in 5.x. Everything else in the add-on
asks this module.
"""

from __future__ import annotations

import bpy

GROUP_API = bpy.app.version >= (5, 0, 0)
TREE_TYPE = "CompositorNodeTree"


def new_tree(name: str) -> bpy.types.NodeTree:
    """A compositor node group with one colour output called 'Image'."""
    tree = bpy.data.node_groups.new(name, TREE_TYPE)
    tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
    return tree


def scene_tree(scene: bpy.types.Scene, create: bool = False) -> bpy.types.NodeTree | None:
    """The node tree the scene composites with (made when `create` and there is none)."""
    if GROUP_API:
        if scene.compositing_node_group is None and create:
            scene.compositing_node_group = new_tree("Compositor")
        return scene.compositing_node_group
    if create and not scene.use_nodes:
        scene.use_nodes = True
    return scene.node_tree if scene.use_nodes else None


def scene_output(tree: bpy.types.NodeTree) -> bpy.types.Node:
    """The node whose first input is the final composite (made when missing)."""
    kind = "NodeGroupOutput" if GROUP_API else "CompositorNodeComposite"
    for node in tree.nodes:
        if node.bl_idname == kind:
            return node
    node = tree.nodes.new(kind)
    node.location = (600, 0)
    return node


def viewer(tree: bpy.types.NodeTree) -> bpy.types.Node:
    """The tree's Viewer node (made when missing): what the editor's backdrop shows."""
    for node in tree.nodes:
        if node.bl_idname == "CompositorNodeViewer":
            return node
    node = tree.nodes.new("CompositorNodeViewer")
    node.location = (600, -200)
    return node


def set_alpha_replace(node: bpy.types.Node) -> None:
    """Make a Set Alpha node replace the image's alpha (rather than multiply it)."""
    if GROUP_API:
        node.inputs["Type"].default_value = "Replace Alpha"
    else:
        node.mode = "REPLACE_ALPHA"


def matte_nodes(scene: bpy.types.Scene) -> list:
    """The VRMBG matte group nodes in the scene's compositor."""
    tree = scene_tree(scene)
    if tree is None:
        return []
    return [node for node in tree.nodes
            if node.bl_idname == "CompositorNodeGroup" and node.node_tree is not None
            and node.node_tree.vrmbg.is_matte]


def matte_trees(scene: bpy.types.Scene) -> list:
    """The matte node groups the scene's compositor uses (each once)."""
    seen = []
    for node in matte_nodes(scene):
        if node.node_tree not in seen:
            seen.append(node.node_tree)
    return seen


def configure_headless(scene: bpy.types.Scene) -> None:
    """Composite on the CPU (there is no GPU context in background renders)."""
    if hasattr(scene.render, "compositor_device"):
        scene.render.compositor_device = "CPU"


def active_matte(scene: bpy.types.Scene) -> bpy.types.NodeTree | None:
    """The matte the panel works on: the active node's when it is a matte, else the first."""
    nodes = matte_nodes(scene)
    if not nodes:
        return None
    active = scene_tree(scene).nodes.active
    return active.node_tree if active in nodes else nodes[0].node_tree


def active_image_node(scene: bpy.types.Scene) -> bpy.types.Node | None:
    """The compositor's active node when it is an Image node with an image."""
    tree = scene_tree(scene)
    active = tree.nodes.active if tree is not None else None
    if active is not None and active.bl_idname == "CompositorNodeImage" and active.image:
        return active
    return None
