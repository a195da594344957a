"""Open Job Description (OpenJD) job templates for a shot list.

The model is temporal: frame N needs every earlier frame of its shot. So by default the
template has one step, "Shots", with one task per shot (task parameter `Shot` = the shot
name); each task runs `vrmbg render` over the whole shot in frame order, and shots run in
parallel across workers. Run one shot locally with

    openjd run job.yaml --step Shots -tp Shot=sh010

Splitting shots into chunks (`chunk` > 0) trades exactness or parallelism for shorter tasks:

- without pre-roll, every chunk is exact, but only because `vrmbg render` continues from
  the previous chunk's cached frames; the chunks of a shot are therefore chained as steps
  that depend on each other ("sh010 part 002" runs after "sh010 part 001"), so they run in
  order on a shared cache. A chunk run out of order recomputes from the shot start.
- with pre-roll (`--preroll P`), each chunk starts P frames early from an empty prior, so
  chunks are independent tasks of one step per shot, run in parallel, and APPROXIMATE
  (the mattes can differ from a straight run near chunk starts; labelled in the output).

Job parameters: `VrmbgExecutable` (default `vrmbg`; point it at the farm's install),
`Model` (the weights: a Hugging Face id or a folder the workers can read), and PATH
parameters for every shot's plates and output (`<shot>Plates`, `<shot>Output`) and the
job's cache folder (`CacheDir`, when `--cache-dir` is given), so the farm's path mapping
applies to them; their defaults are relative to the template's folder, as OpenJD wants.
With a thread budget (`--threads N`) every step asks for workers with at least N vCPUs.
Tasks run an embedded bash script (Linux/macOS workers) that gets every path as an
argument. Cancelling a task sends SIGTERM, `vrmbg render` finishes and keeps
the current frame, and is killed after the grace period.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ...plugin import schema
from .shotlist import Shot, chunk_specs, merged_settings, setting_flags

SPECIFICATION = "jobtemplate-2023-09"
CANCEL_GRACE_SECONDS = 120  # a full-size frame on CPU takes ~30 s; finish it, then kill
STEP_NAME = "Shots"
MAX_NAME = 64  # OpenJD limit on step and parameter names


@dataclass(frozen=True)
class _Paths:
    """The PATH job parameters of a template: each shot's plates and output, the cache."""

    names: Mapping[str, tuple[str, str]]  # shot name -> (plates parameter, output parameter)
    cache: str  # the CacheDir parameter, "" when the job has no cache folder

    def args(self, shots: Sequence[Shot]) -> list[str]:
        """`{{Param.X}}` task arguments: each shot's plates and output, then the cache."""
        refs = [f"{{{{Param.{name}}}}}" for shot in shots for name in self.names[shot.name]]
        return refs + ([f"{{{{Param.{self.cache}}}}}"] if self.cache else [])


def build_template(shots: Sequence[Shot], job: Mapping[str, Any], *, name: str = "vrmbg",
                   executable: str = "vrmbg", chunk: int = 0,
                   template_dir: str = "") -> dict[str, Any]:
    """The job template (a JSON-able dict) rendering every shot.

    `job` holds the job-wide settings (see `shotlist.job_settings`); its `model` becomes the
    default of the `Model` job parameter. `chunk` > 0 splits shots into chunks of that many
    frames (chained steps without pre-roll, parallel approximate tasks with it).
    `template_dir`: the folder the template is written to (PATH defaults are relative to it;
    default: the current folder).
    """
    preroll = int(job.get("preroll", 0) or 0)
    paths = _path_names(shots, job)
    if chunk <= 0:
        steps = [_shots_step(shots, job, paths)]
    elif preroll > 0:
        steps = [_parallel_chunk_step(shot, job, chunk, paths) for shot in shots]
    else:
        steps = [step for shot in shots
                 for step in _ordered_chunk_steps(shot, job, chunk, paths)]
    return {
        "specificationVersion": SPECIFICATION,
        "name": name[:128],
        "description": _job_description(chunk, preroll),
        "parameterDefinitions": (_parameter_definitions(job, executable)
                                 + _path_definitions(shots, job, paths,
                                                     template_dir or os.getcwd())),
        "steps": steps,
    }


def _path_names(shots: Sequence[Shot], job: Mapping[str, Any]) -> _Paths:
    """Unique job parameter names for every shot's plates and output (and the cache)."""
    used = {"VrmbgExecutable", "Model", "CacheDir"}
    names = {}
    for index, shot in enumerate(shots, start=1):
        stem = re.sub(r"\W", "_", shot.name)
        stem = stem if stem[:1].isalpha() else f"Shot_{stem}"
        if f"{stem}Plates" in used or f"{stem}Output" in used:
            stem = f"{stem}_{index}"
        pair = (f"{stem}Plates"[:MAX_NAME], f"{stem}Output"[:MAX_NAME])
        used.update(pair)
        names[shot.name] = pair
    return _Paths(names, "CacheDir" if job.get("cache_dir") else "")


def _path_definitions(shots: Sequence[Shot], job: Mapping[str, Any], paths: _Paths,
                      folder: str) -> list[dict[str, Any]]:
    """PATH job parameters (path mapping applies to them), defaults relative to `folder`."""
    def path(name: str, value: str, text: str, **kind: str) -> dict[str, Any]:
        # frame patterns are not files: no object type or data flow for job attachments
        return {"name": name, "type": "PATH", **kind,
                "default": os.path.relpath(value, folder), "description": text}

    definitions = []
    for shot in shots:
        plates, output = paths.names[shot.name]
        definitions.append(path(plates, shot.input,
                                f"Plates of shot {shot.name} (a frame pattern or a movie)."))
        definitions.append(path(output, shot.output,
                                f"Mattes of shot {shot.name} (a frame pattern or a .mov)."))
    if paths.cache:
        definitions.append(path(paths.cache, str(job["cache_dir"]),
                                "The shared temporal cache every task continues from.",
                                objectType="DIRECTORY"))
    return definitions


def _job_description(chunk: int, preroll: int) -> str:
    """What the job's task layout means for exactness, shown in farm monitors."""
    if chunk <= 0:
        return "vrmbg mattes: one task per shot, each shot rendered in frame order (exact)."
    if preroll > 0:
        return (f"vrmbg mattes in chunks of {chunk} frames with {preroll} frames of pre-roll "
                "from an empty prior: chunks run in parallel and are APPROXIMATE.")
    return (f"vrmbg mattes in chunks of {chunk} frames, chained in frame order so each chunk "
            "continues exactly from the cached end of the one before.")


def _parameter_definitions(job: Mapping[str, Any], executable: str) -> list[dict[str, Any]]:
    """Job parameters farms override at submission: the executable and the model."""
    model = str(job.get("model") or schema.get("model").default)
    return [
        {"name": "VrmbgExecutable", "type": "STRING", "minLength": 1, "default": executable,
         "description": "The vrmbg command on the workers (a path to the farm's install)."},
        {"name": "Model", "type": "STRING", "minLength": 1, "default": model,
         "description": "Weights: a Hugging Face repo id, or a model folder or .safetensors "
                        "file the workers can read."},
    ]


def _shots_step(shots: Sequence[Shot], job: Mapping[str, Any], paths: _Paths) -> dict[str, Any]:
    """The default step: one task per shot, a `case` on the shot name picks its command."""
    lines = [_script_header("one task renders one whole shot, in frame order", "shot name",
                            paths="each shot's plates and output in shot list order"),
             'case "$3" in']
    cache = 4 + 2 * len(shots)
    for index, shot in enumerate(shots):
        command = _command_line(shot, job, frames=shlex.quote(f"--frames={shot.frame_spec}"),
                                where=(4 + 2 * index, 5 + 2 * index, cache if paths.cache
                                       else 0))
        lines.append(f"  {shlex.quote(shot.name)})\n    {command} ;;")
    lines.append('  *) echo "openjd_fail: unknown shot $3"; exit 2 ;;')
    lines.append("esac")
    return _step(STEP_NAME, "\n".join(lines) + "\n", "{{Task.Param.Shot}}",
                 description="One task per shot; each shot renders in frame order.",
                 task_parameter=("Shot", [shot.name for shot in shots]),
                 host=_host_requirements(shots, job), paths=paths.args(shots))


def _parallel_chunk_step(shot: Shot, job: Mapping[str, Any], chunk: int,
                         paths: _Paths) -> dict[str, Any]:
    """One step per shot whose tasks are its chunks, each with pre-roll (approximate)."""
    script = "\n".join([_script_header(f"shot {shot.name}: one chunk with pre-roll "
                                       "(approximate)", "the chunk's frames",
                                       paths="the shot's plates and output"),
                        _command_line(shot, job, frames='"--frames=$3"',
                                      where=(4, 5, 6 if paths.cache else 0))]) + "\n"
    return _step(shot.name, script, "{{Task.Param.Frames}}",
                 description=f"Shot {shot.name} frames {shot.frame_spec} in chunks of {chunk} "
                             "with pre-roll: approximate, chunks independent.",
                 task_parameter=("Frames", chunk_specs(shot, chunk)),
                 host=_host_requirements([shot], job), paths=paths.args([shot]))


def _ordered_chunk_steps(shot: Shot, job: Mapping[str, Any], chunk: int,
                         paths: _Paths) -> list[dict[str, Any]]:
    """One single-task step per chunk, each depending on the shot's previous chunk."""
    steps: list[dict[str, Any]] = []
    specs = chunk_specs(shot, chunk)
    for index, spec in enumerate(specs, start=1):
        script = "\n".join([_script_header(f"shot {shot.name}: chunk {index} of {len(specs)}, "
                                           "continuing from the previous chunk's cache",
                                           paths="the shot's plates and output"),
                            _command_line(shot, job, frames=shlex.quote(f"--frames={spec}"),
                                          where=(3, 4, 5 if paths.cache else 0))])
        name = f"{shot.name} part {index:03d}"
        after = [steps[-1]["name"]] if steps else []
        steps.append(_step(name, script + "\n", "", after=after,
                           description=f"Shot {shot.name} frames {spec} (chunk {index} of "
                                       f"{len(specs)}, exact when run after the one before).",
                           host=_host_requirements([shot], job), paths=paths.args([shot])))
    return steps


def _host_requirements(shots: Sequence[Shot], job: Mapping[str, Any]) -> dict[str, Any] | None:
    """Workers with at least as many vCPUs as the step's renders may use (`--threads`), or
    None when the renders use whatever the worker has."""
    threads = max((int(merged_settings(shot, job).get("threads") or 0) for shot in shots),
                  default=0)
    if threads <= 0:
        return None
    return {"amounts": [{"name": "amount.worker.vcpu", "min": threads}]}


def _script_header(purpose: str, task_arg: str = "", paths: str = "") -> str:
    """The start of every task script: arguments and strict bash settings."""
    arguments = "# $1 = vrmbg executable, $2 = model" + (f", $3 = {task_arg}" if task_arg else "")
    arguments += f", then {paths} (and the cache folder, if any)." if paths else "."
    return "\n".join([
        "#!/usr/bin/env bash",
        f"# vrmbg: {purpose}.",
        arguments,
        "set -euo pipefail",
        'VRMBG="$1"',
        'MODEL="$2"',
        "export VRMBG_PROGRESS=plain  # openjd_progress / openjd_status lines for the farm",
    ])


def _command_line(shot: Shot, job: Mapping[str, Any], *, frames: str,
                  where: tuple[int, int, int]) -> str:
    """The bash line running `vrmbg render` for a shot (`frames` is a ready bash word).

    `where`: the script arguments holding the shot's plates, its output and the job's cache
    folder (0 = no cache argument: the shot's own or none).
    """
    settings = merged_settings(shot, job)
    if "model" in shot.settings:  # the shot names its own weights
        model = shlex.quote(f"--model={settings['model']}")
    else:
        model = '"--model=$MODEL"'
    plates, output, cache = where
    skip = ["model"]
    words = ['exec "$VRMBG"', "render", f'"${{{plates}}}"', "-o", f'"${{{output}}}"', frames,
             model]
    if cache and "cache_dir" not in shot.settings:
        skip.append("cache_dir")
        words.append(f'"--cache-dir=${{{cache}}}"')
    flags = [shlex.quote(flag) for flag in setting_flags(settings, skip=skip)]
    return " ".join([*words, *flags])


def _step(name: str, script: str, task_value: str, *, description: str,
          task_parameter: tuple[str, list[str]] | None = None,
          after: Sequence[str] = (), host: Mapping[str, Any] | None = None,
          paths: Sequence[str] = ()) -> dict[str, Any]:
    """A step running the embedded bash `script` with the executable, model, task value and
    `paths` (on workers meeting `host`, OpenJD host requirements, when given)."""
    args = ["{{Task.File.Render}}", "{{Param.VrmbgExecutable}}", "{{Param.Model}}"]
    if task_value:
        args.append(task_value)
    args.extend(paths)
    step: dict[str, Any] = {"name": name[:MAX_NAME], "description": description}
    if task_parameter is not None:
        param, values = task_parameter
        step["parameterSpace"] = {"taskParameterDefinitions": [
            {"name": param, "type": "STRING", "range": list(values)}]}
    step["script"] = {
        "actions": {"onRun": {
            "command": "bash", "args": args,
            "cancelation": {"mode": "NOTIFY_THEN_TERMINATE",
                            "notifyPeriodInSeconds": CANCEL_GRACE_SECONDS}}},
        "embeddedFiles": [{"name": "Render", "type": "TEXT", "data": script}],
    }
    if after:
        step["dependencies"] = [{"dependsOn": dep} for dep in after]
    if host:
        step["hostRequirements"] = dict(host)
    return step


def template_text(template: Mapping[str, Any]) -> str:
    """The template as YAML (scripts as readable `|` blocks), or JSON without PyYAML.

    JSON is valid YAML, so the file is a valid template either way.
    """
    try:
        import yaml
    except ImportError:
        return json.dumps(template, indent=2) + "\n"

    class _Dumper(yaml.SafeDumper):
        """Safe YAML with multi-line strings as literal blocks."""

    def _string(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _string)
    return yaml.dump(dict(template), Dumper=_Dumper, sort_keys=False, width=100,
                     allow_unicode=True)
