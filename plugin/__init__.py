"""Host-neutral plugin layer shared by the Nuke and Blender adapters.

Standard library only and relative imports only, so this folder can be copied
unchanged into a NUKE_PATH folder or a Blender extension.
"""
