"""Open Job Description (OpenJD) job templates for a shot list.

The model is temporal: frame N needs every earlier frame of its shot. So by default every
shot is one step with one task, named after the shot ("sh010"), that runs `vrmbg render`
over the whole shot in frame order; shots run in parallel across workers. Run one shot
locally with

    openjd run job.yaml --step sh010

Splitting shots into chunks (`chunk` > 0) trades exactness or parallelism for shorter tasks.
Each chunk is its own one-task step, "sh010 part 001", "sh010 part 002", ..., in both chunk
modes, so a step's name says the same thing whatever the mode (a shot that fits in one
chunk keeps the step name "sh010"):

- without pre-roll, every chunk is exact, but only because `vrmbg render` continues from
  the previous chunk's cached frames; the chunks of a shot therefore depend on each other
  ("sh010 part 002" runs after "sh010 part 001"), so they run in order on a shared cache.
  A chunk run out of order recomputes from the shot start.
- with pre-roll (`--preroll P`), each chunk starts P frames early from an empty prior, so
  chunks are independent and run in parallel, and are APPROXIMATE (the mattes can differ
  from a straight run near chunk starts; labelled in the output).

Job parameters: `VrmbgExecutable` (default `vrmbg`; point it at the farm's install),
`Model` (the weights: a STRING Hugging Face id, or a PATH when it is a local folder or
file), and for every shot its plates' folder and its output folder as DIRECTORY PATH
parameters with their data flow (`<shot>PlatesDir` IN, `<shot>OutputDir` OUT), each with
its pattern as a STRING beside it (`<shot>Plates`, `<shot>Output`), and the job's cache
folder (`CacheDir`, INOUT, when `--cache-dir` is given). A farm's path mapping and job
attachments apply to the folders; their defaults are relative to the template's folder,
as OpenJD wants. `write_bundle` adds what a Deadline Cloud job bundle needs.
Every step pins its renders' thread count (`--threads`, 4 unless given: on a CPU the
thread count is part of a chain's identity, so chunks on hosts with other core counts would
otherwise form other chains) and asks for workers with at least that many vCPUs; steps of
`--device cuda` renders ask for a GPU. A shot whose output is a movie is one task whatever
`--chunk` says: a movie is written whole or not at all.
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
from ..errors import UsageError
from .shotlist import Shot, chunk_specs, is_movie_output, merged_settings, setting_flags

SPECIFICATION = "jobtemplate-2023-09"
CANCEL_GRACE_SECONDS = 120  # a full-size frame on CPU takes ~30 s; finish it, then kill
MAX_NAME = 64  # OpenJD limit on step and parameter names


@dataclass(frozen=True)
class _Paths:
    """The job parameters naming a template's files: for each shot its plates' folder and
    pattern and its output's folder and name (folders are DIRECTORY PATH parameters, so job
    attachments and path mapping move them; patterns are STRINGs beside them), the cache."""

    # shot name -> (plates folder, plates pattern, output folder, output name) parameters
    names: Mapping[str, tuple[str, str, str, str]]
    cache: str  # the CacheDir parameter, "" when the job has no cache folder

    def args(self, shots: Sequence[Shot]) -> list[str]:
        """`{{Param.X}}` task arguments: each shot's four, then the cache."""
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
    steps = [step for shot in shots
             for step in _shot_steps(shot, job, chunk, preroll <= 0, paths)]
    _check_unique_names(steps)
    return {
        "specificationVersion": SPECIFICATION,
        "name": name[:128],
        "description": _job_description(chunk, preroll),
        "parameterDefinitions": (_parameter_definitions(job, executable,
                                                        template_dir or os.getcwd())
                                 + _path_definitions(shots, job, paths,
                                                     template_dir or os.getcwd())),
        "steps": steps,
    }


def _check_unique_names(steps: Sequence[Mapping[str, Any]]) -> None:
    """Refuse shot names that OpenJD's 64-character limit would make the same step name."""
    seen: set[str] = set()
    for step in steps:
        if step["name"] in seen:
            raise UsageError(f"two shots give the step name {step['name']!r} (OpenJD keeps "
                             f"{MAX_NAME} characters): shorten the shot names")
        seen.add(step["name"])


def _path_names(shots: Sequence[Shot], job: Mapping[str, Any]) -> _Paths:
    """Unique job parameter names for every shot's plates and output (and the cache)."""
    used = {"VrmbgExecutable", "Model", "CacheDir"}
    names = {}
    for index, shot in enumerate(shots, start=1):
        stem = re.sub(r"\W", "_", shot.name)
        stem = stem if stem[:1].isalpha() else f"Shot_{stem}"
        suffixes = ("PlatesDir", "Plates", "OutputDir", "Output")
        if any(f"{stem}{suffix}" in used for suffix in suffixes):
            stem = f"{stem}_{index}"
        four = tuple(f"{stem[:MAX_NAME - len(suffix)]}{suffix}" for suffix in suffixes)
        used.update(four)
        names[shot.name] = four
    return _Paths(names, "CacheDir" if job.get("cache_dir") else "")


def _path_definitions(shots: Sequence[Shot], job: Mapping[str, Any], paths: _Paths,
                      folder: str) -> list[dict[str, Any]]:
    """Folders as DIRECTORY PATH parameters with their data flow (path mapping and job
    attachments apply to them; defaults relative to `folder`), patterns as STRINGs."""
    def directory(name: str, value: str, flow: str, text: str) -> dict[str, Any]:
        return {"name": name, "type": "PATH", "objectType": "DIRECTORY", "dataFlow": flow,
                "default": os.path.relpath(value, folder), "description": text}

    def pattern(name: str, value: str, text: str) -> dict[str, Any]:
        return {"name": name, "type": "STRING", "minLength": 1, "default": value,
                "description": text}

    definitions = []
    for shot in shots:
        plates_dir, plates, output_dir, output = paths.names[shot.name]
        definitions += [
            directory(plates_dir, os.path.dirname(shot.input), "IN",
                      f"Folder of shot {shot.name}'s plates."),
            pattern(plates, os.path.basename(shot.input),
                    f"Plates of shot {shot.name} in that folder (a frame pattern or a movie)."),
            directory(output_dir, os.path.dirname(shot.output), "OUT",
                      f"Folder shot {shot.name}'s mattes are written to."),
            pattern(output, os.path.basename(shot.output),
                    f"Mattes of shot {shot.name} in that folder (a frame pattern or a .mov)."),
        ]
    if paths.cache:
        definitions.append(directory(paths.cache, str(job["cache_dir"]), "INOUT",
                                     "The shared temporal cache every task continues from."))
    return definitions


def _job_description(chunk: int, preroll: int) -> str:
    """What the job's task layout means for exactness, shown in farm monitors."""
    if chunk <= 0:
        return "vrmbg mattes: one step per shot, each shot rendered in frame order (exact)."
    if preroll > 0:
        return (f"vrmbg mattes in chunks of {chunk} frames with {preroll} frames of pre-roll "
                "from an empty prior: chunks run in parallel and are APPROXIMATE.")
    return (f"vrmbg mattes in chunks of {chunk} frames, chained in frame order so each chunk "
            "continues exactly from the cached end of the one before.")


def _parameter_definitions(job: Mapping[str, Any], executable: str,
                           folder: str) -> list[dict[str, Any]]:
    """Job parameters farms override at submission: the executable and the model."""
    model = str(job.get("model") or schema.get("model").default)
    definitions: list[dict[str, Any]] = [
        {"name": "VrmbgExecutable", "type": "STRING", "minLength": 1, "default": executable,
         "description": "The vrmbg command on the workers (a path to the farm's install)."}]
    if os.path.exists(model):  # a local model folder or file: path mapping must move it
        kind = "DIRECTORY" if os.path.isdir(model) else "FILE"
        definitions.append({"name": "Model", "type": "PATH", "objectType": kind,
                            "dataFlow": "IN", "default": os.path.relpath(model, folder),
                            "description": "Weights: the model folder or .safetensors file."})
    else:
        definitions.append({"name": "Model", "type": "STRING", "minLength": 1, "default": model,
                            "description": "Weights: a Hugging Face repo id (the workers need "
                                           "network access or a filled HF cache), or a model "
                                           "folder or .safetensors file they can read."})
    return definitions


def _shot_steps(shot: Shot, job: Mapping[str, Any], chunk: int, chained: bool,
                paths: _Paths) -> list[dict[str, Any]]:
    """The shot's steps, one single-task step per chunk (one for a whole shot).

    Names do not depend on the mode: `<shot>` for a shot rendered in one piece, `<shot> part
    NNN` for its chunks. `chained`: each chunk depends on the one before (exact, in order);
    otherwise chunks are independent (pre-roll, approximate)."""
    whole = chunk <= 0 or is_movie_output(shot.output)  # a movie is written in one piece
    specs = [shot.frame_spec] if whole else chunk_specs(shot, chunk)
    steps: list[dict[str, Any]] = []
    for index, spec in enumerate(specs, start=1):
        if len(specs) == 1:
            name, purpose = _step_name(shot.name), "the whole shot, in frame order"
            text = f"Shot {shot.name} frames {spec}, in frame order (exact)."
        elif chained:
            name = _step_name(shot.name, f" part {index:03d}")
            purpose = (f"chunk {index} of {len(specs)}, " + (
                "continuing from the previous chunk's cache" if index > 1
                else "the start of the chain"))
            text = (f"Shot {shot.name} frames {spec} (chunk {index} of {len(specs)}, exact "
                    "when run after the one before).")
        else:
            name = _step_name(shot.name, f" part {index:03d}")
            purpose = f"chunk {index} of {len(specs)} with pre-roll (approximate)"
            text = (f"Shot {shot.name} frames {spec} (chunk {index} of {len(specs)}, with "
                    "pre-roll: approximate, independent of the other chunks).")
        script = "\n".join([_script_header(f"shot {shot.name}: {purpose}",
                                           paths="the shot's plates and output"),
                            _command_line(shot, job, frames=shlex.quote(f"--frames={spec}"),
                                          where=(3, 5, 7 if paths.cache else 0))])
        after = [steps[-1]["name"]] if steps and chained else []
        steps.append(_step(name, script + "\n", after=after, description=text,
                           host=_host_requirements([shot], job), paths=paths.args([shot])))
    return steps


def _step_name(shot: str, suffix: str = "") -> str:
    """`shot` + `suffix` within OpenJD's name limit, shortening the shot name, not the part."""
    return shot[:MAX_NAME - len(suffix)] + suffix


def _host_requirements(shots: Sequence[Shot], job: Mapping[str, Any]) -> dict[str, Any]:
    """What a worker needs to run the step: a POSIX shell (tasks are bash), as many vCPUs
    as the renders are pinned to (`--threads`: the thread count is part of a CPU chain's
    identity), and a GPU when the renders ask for CUDA."""
    settings = [merged_settings(shot, job) for shot in shots]
    threads = max((int(item.get("threads") or 0) for item in settings), default=0)
    amounts = []
    if threads > 0:
        amounts.append({"name": "amount.worker.vcpu", "min": threads})
    if any(str(item.get("device") or "").startswith("cuda") for item in settings):
        amounts.append({"name": "amount.worker.gpu", "min": 1})
    requirements: dict[str, Any] = {"attributes": [
        {"name": "attr.worker.os.family", "anyOf": ["linux", "macos"]}]}
    if amounts:
        requirements["amounts"] = amounts
    return requirements


def _script_header(purpose: str, paths: str = "") -> str:
    """The start of every task script: arguments and strict bash settings."""
    arguments = "# $1 = vrmbg executable, $2 = model"
    arguments += (f", then {paths} (each a folder and a name in it), and the cache folder, "
                  "if any." if paths else ".")
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

    `where`: the script arguments holding the shot's plates folder (its pattern follows),
    its output folder (its name follows) and the job's cache folder (0 = no cache argument:
    the shot's own or none).
    """
    settings = merged_settings(shot, job)
    if "model" in shot.settings:  # the shot names its own weights
        model = shlex.quote(f"--model={settings['model']}")
    else:
        model = '"--model=$MODEL"'
    plates, output, cache = where
    skip = ["model"]
    words = ['exec "$VRMBG"', "render", f'"${{{plates}}}/${{{plates + 1}}}"', "-o",
             f'"${{{output}}}/${{{output + 1}}}"', frames, model]
    if cache and "cache_dir" not in shot.settings:
        skip.append("cache_dir")
        words.append(f'"--cache-dir=${{{cache}}}"')
    flags = [shlex.quote(flag) for flag in setting_flags(settings, skip=skip)]
    return " ".join([*words, *flags])


def _step(name: str, script: str, *, description: str, after: Sequence[str] = (),
          host: Mapping[str, Any] | None = None, paths: Sequence[str] = ()) -> dict[str, Any]:
    """A one-task step running the embedded bash `script` with the executable, model and
    `paths` (on workers meeting `host`, OpenJD host requirements, when given)."""
    args = ["{{Task.File.Render}}", "{{Param.VrmbgExecutable}}", "{{Param.Model}}", *paths]
    step: dict[str, Any] = {"name": name, "description": description}
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


def bundle_files(template: Mapping[str, Any], folder: str) -> dict[str, str]:
    """The files of a Deadline Cloud job bundle in `folder` (name -> text): the template,
    the parameter values (every PATH parameter as an absolute path on this machine, so the
    submitter can attach or map it) and the asset references (folders read, written)."""
    values, inputs, outputs, files = [], [], [], []
    for definition in template["parameterDefinitions"]:
        if definition["type"] != "PATH":
            continue
        path = os.path.normpath(os.path.join(folder, definition["default"]))
        values.append({"name": definition["name"], "value": path})
        flow = definition.get("dataFlow", "NONE")
        if flow in ("IN", "INOUT"):
            (inputs if definition.get("objectType") == "DIRECTORY" else files).append(path)
        if flow in ("OUT", "INOUT"):
            outputs.append(path)
    references = {"assetReferences": {
        "inputs": {"directories": sorted(set(inputs)), "filenames": sorted(set(files))},
        "outputs": {"directories": sorted(set(outputs))}, "referencedPaths": []}}
    return {"template.yaml": template_text(template),
            "parameter_values.yaml": template_text({"parameterValues": values}),
            "asset_references.yaml": template_text(references)}
