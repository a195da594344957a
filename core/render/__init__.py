"""A render: one shot's frames through the engine to the requested output files.

- `job.RenderJob`: the `vrmbg render` job (open, choose the chain, plan, write, summarise).
- `target`: the output (EXR sequence or movie): refusals, what is there already, the plan.
- `chain_choice`: the exact chain, or a bounded pre-roll when asked for.
- `frame_loop`: the pass over the frames, writing outputs as they finish.
- `output_plan`: which output frames are written, skipped or refused (a pure decision).
- `output_writer`: writing each matte (or RGBA) to the output as it is computed.
- `summary`: the render's log lines and its `--json` summary.
- `progress`: the terminal bar, `Progress: NN%` and `openjd_progress` lines, cancel on a signal.
"""
