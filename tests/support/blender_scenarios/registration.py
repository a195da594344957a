"""What the extension registers (properties from the schema), Add Matte from the active Image
node, and a clean unregister/register cycle."""

import os
import sys

import bpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scenario import addon, arguments, finish, install_extension  # noqa: E402


def describe(rna_struct, names):
    found = {}
    for name in names:
        prop = rna_struct.properties.get(name)
        if prop is None:
            continue
        entry = {"type": prop.type, "description": prop.description, "name": prop.name}
        if prop.type == "ENUM":
            entry["default"] = prop.default
            entry["choices"] = [item.identifier for item in prop.enum_items]
        else:
            entry["default"] = prop.default
        if prop.type in ("INT", "FLOAT"):
            entry["min"], entry["max"] = prop.hard_min, prop.hard_max
        found[name] = entry
    return found


args = arguments()
module = install_extension(args["zip"])
package = addon(module)
names = args["names"]
matte_props = describe(bpy.types.NodeTree.bl_rna.properties["vrmbg"].fixed_type, names)
operator_props = describe(bpy.ops.vrmbg.add_matte.get_rna_type(), names)
prefs = bpy.context.preferences.addons[module].preferences
defaults_props = describe(prefs.defaults.bl_rna, names)

# A preference default reaches a new matte; an operator argument wins over it.
prefs.defaults.resolution = 64
bpy.ops.wm.save_as_mainfile(filepath=args["blend"])
scene = bpy.context.scene
tree = package.compositor.scene_tree(scene, create=True)
image_node = tree.nodes.new("CompositorNodeImage")
image_node.image = bpy.data.images.load(args["plate_frame"])
tree.nodes.active = image_node
added = bpy.ops.vrmbg.add_matte(model="demo", precision="fp32")
matte = package.compositor.active_matte(scene)
from_node = {"result": sorted(added), "resolution": matte.vrmbg.resolution,
             "precision": matte.vrmbg.precision, "plate": matte.vrmbg.plate,
             "scene_range": [scene.frame_start, scene.frame_end],
             "size": [scene.render.resolution_x, scene.render.resolution_y]}

handler_names = lambda: sorted(h.__name__ for name in ("frame_change_post", "render_pre",  # noqa: E731
                                                      "load_post")
                               for h in getattr(bpy.app.handlers, name)
                               if h.__module__.startswith(module))
installed_handlers = handler_names()
prefs.engine_python = args["engine_python"]
remote_code = [package.engine.client().allow_remote_code]  # off unless the person allows it
prefs.allow_remote_code = True
remote_code.append(package.engine.client().allow_remote_code)
prefs.allow_remote_code = False
bpy.ops.preferences.addon_disable(module=module)
after_disable = {"operator": hasattr(bpy.types, "VRMBG_OT_add_matte"),
                 "settings": hasattr(bpy.types.NodeTree, "vrmbg"),
                 "handlers": handler_names(),
                 "worker": package.engine._client is not None}
bpy.ops.preferences.addon_enable(module=module)
after_enable = {"operator": hasattr(bpy.types, "VRMBG_OT_add_matte"),
                "handlers": handler_names()}
kept_python = bpy.context.preferences.addons[module].preferences.engine_python
found = {python: package.preferences.engine_python_found(python)
         for python in (args["engine_python"], args["no_vrmbg_python"])}
finish(kept_python=kept_python, found=found,
       matte=matte_props, operator=operator_props, defaults=defaults_props, from_node=from_node,
       installed_handlers=installed_handlers, after_disable=after_disable,
       after_enable=after_enable, remote_code=remote_code)
