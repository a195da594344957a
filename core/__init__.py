"""The VRMBG engine: plate I/O, colour, the model, the temporal cache and the command line.

Never imports a host application module (nuke, bpy).
"""

__version__ = "0.1.0"
