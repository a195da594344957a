"""Colour: from the plate's colour space to the display-referred RGB the model was trained on.

- `transform`: the OCIO config, colour-space names and bridges, and the CPU conversion.
- `device`: the same conversion rebuilt for the inference device, checked against OCIO.
"""
