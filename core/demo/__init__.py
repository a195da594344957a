"""The bundled demo: generated shots with exact ground truth, the demo model and its checks.

- `synth`: procedural ACEScg shots with exact alpha (`generate_shot`), as the model sees them,
  and endless training clips; `scene` draws a shot's parameters from its seed and `drawing`
  renders its frames.
- `shot_files`: a generated shot written as plates (EXR, optional 10-bit log DPX) and truth.
- `train`: `vrmbg model train-demo` (`train_cli`, `train_settings`), which trains the bundled
  `demo` model on them.
- `report`: IoU / SAD / temporal-stability figures and the contact sheet PNG.
- `weights/demo/`: the trained model (demo-only: synthetic shots, not real footage).
"""
