"""Rendering many shots: shot lists, farm job writers (OpenJD, OpenCue), shared helpers.

Farm engines schedule the work; vrmbg only describes it. Every shot becomes one
`vrmbg render` command over the whole shot (the model is temporal, so a shot runs in frame
order), built by `shotlist.render_args` from the job-wide and per-shot settings.
"""

from .shotlist import (Shot, job_settings, load_shotlist, merged_settings, render_args,
                       valid_keys)

__all__ = ["Shot", "job_settings", "load_shotlist", "merged_settings", "render_args",
           "valid_keys"]
