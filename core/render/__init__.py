"""A render: one shot's frames through the engine to the requested output files.

- `job.RenderJob`: the `vrmbg render` job (open, plan, compute, write, summarise).
- `output_plan`: what an output folder already holds and whether it may be reused.
- `output_writer`: writing each matte (or RGBA) to the output as it is computed.
- `progress`: the terminal bar, `Progress: NN%` and `openjd_progress` lines, cancel on a signal.
"""
