"""VRMBG Matte: temporally stable alpha mattes from VRMBG-3.0 in Blender's compositor.

Registration only: the add-on's parts live in their own modules.
"""

from __future__ import annotations

import bpy

from . import analyse, engine, handlers, operators, panel, preferences, properties
from .plugin.platform_check import unsupported_platform

_CLASSES = (
    properties.classes
    + preferences.classes
    + operators.classes
    + analyse.classes
    + panel.classes
    + panel.key_panels
)


def register() -> None:
    """Register classes in order, then the node-tree settings and the handlers (on Windows,
    one line says the engine cannot run here; the panel and operators say it again)."""
    if unsupported_platform():
        print("VRMBG: " + unsupported_platform())
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    properties.register_pointers()
    properties.watch_settings(engine.settings_changed)
    handlers.register()


def unregister() -> None:
    """Undo `register` in reverse order and stop the engine worker."""
    handlers.unregister()
    properties.watch_settings(None)
    properties.unregister_pointers()
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
    engine.shutdown()
