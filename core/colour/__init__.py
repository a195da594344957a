"""Colour: from the plate's colour space to the display-referred RGB the model was trained on.

- `config`: the OCIO config, colour-space names and roles, and the bridges between configs.
- `transform`: `ColourTransform`, the CPU conversion (blocks of rows on a few threads).
- `half`: OCIO's half-input processor, used where it matches the float path.
- `sparse`: gathering and scattering the pixels the resize reads, for large plates.
- `probes`: the pixels every other conversion path is checked on.
- `device`: the same conversion rebuilt for the inference device, checked against OCIO.
"""
