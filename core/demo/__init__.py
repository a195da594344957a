"""The bundled demo: generated shots with exact ground truth, the demo model and its checks.

- `synth`: procedural ACEScg shots (EXR, optional 10-bit log DPX) with exact alpha.
- `train`: `vrmbg model train-demo`, which trains the bundled `demo` model on them.
- `report`: IoU / SAD / temporal-stability figures and the contact sheet PNG.
- `weights/demo/`: the trained model (demo-only: synthetic shots, not real footage).
"""
