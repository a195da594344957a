"""OpenJD job templates: `openjd check`, and `openjd run` end to end on two shots."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from render_helpers import assert_same_mattes, read_frames
from vrmbg.core.cli import main
from vrmbg.core.errors import UsageError
from vrmbg.core.farm import openjd as openjd_module
from vrmbg.core.farm.shotlist import Shot
from vrmbg.core.io.frames import SequencePattern, parse_frame_spec

yaml = pytest.importorskip("yaml")
OPENJD = shutil.which("openjd") or os.path.join(os.path.dirname(sys.executable), "openjd")
pytestmark = pytest.mark.skipif(not os.path.exists(OPENJD),
                                reason="openjd-cli is not installed (pip install openjd-cli)")

FAKE_VRMBG = textwrap.dedent("""\
    #!{python}
    # Stands in for `vrmbg render`: records its arguments, writes one file per frame.
    import json, sys
    from vrmbg.core.io.frames import SequencePattern, parse_frame_spec
    args = sys.argv[1:]
    with open({log!r}, "a") as log:
        log.write(json.dumps(args) + "\\n")
    output = args[args.index("-o") + 1]
    spec = next(a.split("=", 1)[1] for a in args if a.startswith("--frames="))
    pattern = SequencePattern.parse(output)
    for frame in parse_frame_spec(spec):
        path = pattern.path_for(frame)
        with open(path, "w") as handle:
            handle.write(str(frame))
    print("Progress: 100%")
""")


def make_fake_vrmbg(folder):
    """An executable that records argv lines in calls.jsonl and writes the output frames."""
    log = folder / "calls.jsonl"
    script = folder / "fake-vrmbg"
    script.write_text(FAKE_VRMBG.format(python=sys.executable, log=str(log)))
    script.chmod(0o755)
    return script, log


def read_calls(log):
    return [json.loads(line) for line in log.read_text().splitlines()]


def flag(args, name):
    return next(a.split("=", 1)[1] for a in args if a.startswith(f"--{name}="))


def make_shotlist(folder, shots=None):
    (folder / "mattes").mkdir(exist_ok=True)
    shots = shots or [
        {"name": "sh010", "input": "plates/sh010.####.exr", "output": "mattes/sh010.####.exr",
         "frames": "1001-1005", "input_colorspace": "ACEScg"},
        {"name": "sh020", "input": "plates/sh020.####.exr", "output": "mattes/sh020.####.exr",
         "frames": "1-7x2"},
    ]
    path = folder / "shots.json"
    path.write_text(json.dumps({"shots": shots}))
    return path


def write_template(tmp_path, *extra):
    shotlist = make_shotlist(tmp_path)
    job = tmp_path / "job.yaml"
    # the plates of these shot lists are not on disk: the job is written unchecked
    assert main(["job", "openjd", str(shotlist), "-o", str(job), "--no-check", *extra]) == 0
    return job


def openjd(*args, cwd=None):
    return subprocess.run([OPENJD, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def expected_frames(tmp_path, name, spec):
    pattern = SequencePattern.parse(str(tmp_path / "mattes" / f"{name}.####.exr"))
    return [pattern.path_for(frame) for frame in parse_frame_spec(spec)]


# -- template shape -------------------------------------------------------------------


@pytest.mark.parametrize("extra", [(), ("--chunk", "2"), ("--chunk", "2", "--preroll", "3")],
                         ids=["per-shot", "ordered-chunks", "preroll-chunks"])
def test_templates_pass_openjd_check(tmp_path, extra):
    job = write_template(tmp_path, "--model", "demo", "--device", "cpu", *extra)
    result = openjd("check", job)
    assert result.returncode == 0, result.stdout + result.stderr


def test_default_template_has_one_step_per_shot_and_job_parameters(tmp_path):
    job = write_template(tmp_path, "--model", "demo")
    template = yaml.safe_load(job.read_text())
    assert template["specificationVersion"] == "jobtemplate-2023-09"
    params = {p["name"]: p for p in template["parameterDefinitions"]}
    assert params["VrmbgExecutable"]["default"] == "vrmbg"
    assert params["Model"]["default"] == "demo"
    assert [step["name"] for step in template["steps"]] == ["sh010", "sh020"]
    assert all("parameterSpace" not in step and "dependencies" not in step
               for step in template["steps"])


def test_step_names_are_the_same_in_both_chunk_modes(tmp_path):
    ordered = yaml.safe_load(write_template(tmp_path, "--chunk", "2").read_text())
    (tmp_path / "again").mkdir()
    parallel = yaml.safe_load(write_template(tmp_path / "again", "--chunk", "2",
                                             "--preroll", "3").read_text())
    names = [step["name"] for step in ordered["steps"]]
    assert names == [step["name"] for step in parallel["steps"]]
    assert all("dependencies" not in step for step in parallel["steps"])
    assert any("dependencies" in step for step in ordered["steps"])


def test_long_shot_names_keep_their_part_number(tmp_path):
    long_name = "sh" + "x" * 80
    shots = [Shot(name=long_name, input=str(tmp_path / "a.####.exr"),
                  output=str(tmp_path / "m.####.exr"), frames=(1, 2, 3, 4, 5, 6))]
    template = openjd_module.build_template(shots, {}, chunk=2, template_dir=str(tmp_path))
    names = [step["name"] for step in template["steps"]]
    assert [name[-9:] for name in names] == [" part 001", " part 002", " part 003"]
    assert all(len(name) <= 64 for name in names)
    twins = shots + [Shot(name=long_name + "_b", input=shots[0].input,
                          output=str(tmp_path / "n.####.exr"), frames=(1, 2, 3, 4, 5, 6))]
    with pytest.raises(UsageError, match="shorten the shot names"):
        openjd_module.build_template(twins, {}, template_dir=str(tmp_path))


def test_ordered_chunks_are_chained_steps(tmp_path):
    template = yaml.safe_load(write_template(tmp_path, "--chunk", "2").read_text())
    steps = template["steps"]
    assert [s["name"] for s in steps] == ["sh010 part 001", "sh010 part 002", "sh010 part 003",
                                          "sh020 part 001", "sh020 part 002"]
    depends = {s["name"]: [d["dependsOn"] for d in s.get("dependencies", [])] for s in steps}
    assert depends["sh010 part 001"] == [] and depends["sh020 part 001"] == []
    assert depends["sh010 part 003"] == ["sh010 part 002"]
    assert depends["sh020 part 002"] == ["sh020 part 001"]


# -- openjd run -----------------------------------------------------------------------


def test_openjd_run_renders_every_shot_with_the_fake_vrmbg(tmp_path):
    fake, log = make_fake_vrmbg(tmp_path)
    job = write_template(tmp_path, "--device", "cpu")
    result = openjd("run", job, "-p", f"VrmbgExecutable={fake}", "-p", "Model=my/model",
                    cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    calls = {flag(args, "frames"): args for args in read_calls(log)}
    assert set(calls) == {"1001-1005", "1-7x2"}
    sh010, sh020 = calls["1001-1005"], calls["1-7x2"]
    assert sh010[:4] == ["render", str(tmp_path / "plates" / "sh010.####.exr"), "-o",
                         str(tmp_path / "mattes" / "sh010.####.exr")]
    assert flag(sh010, "input-colorspace") == "ACEScg"
    assert "--input-colorspace" not in " ".join(sh020)
    for args in (sh010, sh020):
        assert flag(args, "model") == "my/model"  # the job parameter reaches every task
        assert flag(args, "device") == "cpu"  # job-wide option reaches every task
    for name, spec in (("sh010", "1001-1005"), ("sh020", "1-7x2")):
        for path in expected_frames(tmp_path, name, spec):
            assert os.path.isfile(path), path


def test_openjd_run_ordered_chunks_run_in_frame_order(tmp_path):
    fake, log = make_fake_vrmbg(tmp_path)
    job = write_template(tmp_path, "--chunk", "2")
    result = openjd("run", job, "-p", f"VrmbgExecutable={fake}", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    calls = read_calls(log)
    sh010 = [flag(a, "frames") for a in calls if a[1].endswith("sh010.####.exr")]
    assert sh010 == ["1001-1002", "1003-1004", "1005"]
    assert all("--preroll" not in " ".join(a) for a in calls)
    assert all(flag(a, "model") == "briaai/VRMBG-3.0" for a in calls)


def test_openjd_run_preroll_chunks_pass_the_preroll(tmp_path):
    fake, log = make_fake_vrmbg(tmp_path)
    job = write_template(tmp_path, "--chunk", "2", "--preroll", "3")
    result = openjd("run", job, "-p", f"VrmbgExecutable={fake}", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    calls = read_calls(log)
    assert sorted(flag(a, "frames") for a in calls) == sorted(
        ["1001-1002", "1003-1004", "1005", "1,3", "5,7"])
    assert all(flag(a, "preroll") == "3" for a in calls)
    for path in expected_frames(tmp_path, "sh020", "1-7x2"):
        assert os.path.isfile(path)


@pytest.mark.parametrize("extra", [(), ("--chunk", "2"), ("--chunk", "2", "--preroll", "3")],
                         ids=["per-shot", "ordered-chunks", "preroll-chunks"])
def test_a_thread_budget_asks_for_workers_with_that_many_vcpus(tmp_path, extra):
    fake, log = make_fake_vrmbg(tmp_path)
    job = write_template(tmp_path, "--threads", "2", *extra)
    assert openjd("check", job).returncode == 0
    steps = yaml.safe_load(job.read_text())["steps"]
    for step in steps:
        assert step["hostRequirements"]["amounts"] == [
            {"name": "amount.worker.vcpu", "min": 2}], step["name"]
    result = openjd("run", job, "-p", f"VrmbgExecutable={fake}", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(flag(args, "threads") == "2" for args in read_calls(log))


def test_without_threads_every_task_is_pinned_and_books_the_same_count(tmp_path):
    """On a CPU the thread count is part of a chain's identity: tasks on hosts with other
    core counts would otherwise make mattes that differ."""
    fake, log = make_fake_vrmbg(tmp_path)
    job = write_template(tmp_path, "--chunk", "2")
    steps = yaml.safe_load(job.read_text())["steps"]
    for step in steps:
        assert step["hostRequirements"]["amounts"] == [
            {"name": "amount.worker.vcpu", "min": 4}], step["name"]
        assert step["hostRequirements"]["attributes"] == [
            {"name": "attr.worker.os.family", "anyOf": ["linux", "macos"]}]
    result = openjd("run", job, "-p", f"VrmbgExecutable={fake}", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {flag(args, "threads") for args in read_calls(log)} == {"4"}


def test_cuda_tasks_ask_the_farm_for_a_gpu(tmp_path):
    job = write_template(tmp_path, "--device", "cuda")
    assert openjd("check", job).returncode == 0
    for step in yaml.safe_load(job.read_text())["steps"]:
        assert {"name": "amount.worker.gpu", "min": 1} in step["hostRequirements"]["amounts"]
    (tmp_path / "cpu").mkdir()
    cpu = yaml.safe_load(write_template(tmp_path / "cpu", "--device", "cpu").read_text())
    assert all(a["name"] != "amount.worker.gpu"
               for step in cpu["steps"] for a in step["hostRequirements"]["amounts"])


def test_a_movie_output_is_one_task_whatever_the_chunk_size(tmp_path):
    """A movie is written whole or not at all: chunks would leave only the last one."""
    make_shotlist(tmp_path, [
        {"name": "sh010", "input": "plates/sh010.####.exr", "output": "mattes/sh010.mov",
         "frames": "1001-1015"},
        {"name": "sh020", "input": "plates/sh020.####.exr", "output": "mattes/sh020.####.exr",
         "frames": "1001-1010"}])
    job = tmp_path / "job.yaml"
    assert main(["job", "openjd", str(tmp_path / "shots.json"), "-o", str(job), "--no-check",
                 "--chunk", "5"]) == 0
    names = [step["name"] for step in yaml.safe_load(job.read_text())["steps"]]
    assert names == ["sh010", "sh020 part 001", "sh020 part 002"]


def test_openjd_run_one_shot_by_its_step_name(tmp_path):
    fake, log = make_fake_vrmbg(tmp_path)
    job = write_template(tmp_path)
    result = openjd("run", job, "-p", f"VrmbgExecutable={fake}", "--step", "sh020",
                    cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [flag(a, "frames") for a in read_calls(log)] == ["1-7x2"]


def test_a_failing_shot_fails_the_openjd_task(tmp_path):
    failing = tmp_path / "failing-vrmbg"
    failing.write_text("#!/bin/sh\necho 'vrmbg: error: plate missing' >&2\nexit 3\n")
    failing.chmod(0o755)
    job = write_template(tmp_path)
    result = openjd("run", job, "-p", f"VrmbgExecutable={failing}", cwd=tmp_path)
    assert result.returncode != 0
    assert "plate missing" in result.stdout + result.stderr


# -- the real thing -------------------------------------------------------------------

VRMBG = shutil.which("vrmbg") or os.path.join(os.path.dirname(sys.executable), "vrmbg")


def _write_plates(folder, name, frames, seed):
    import OpenImageIO as oiio

    rng = np.random.default_rng(seed)
    pattern = SequencePattern.parse(str(folder / f"{name}.####.exr"))
    for frame in frames:
        spec = oiio.ImageSpec(40, 24, 3, oiio.HALF)
        out = oiio.ImageOutput.create(pattern.path_for(frame))
        out.open(pattern.path_for(frame), spec)
        out.write_image(rng.random((24, 40, 3), dtype=np.float32))
        out.close()


@pytest.mark.slow
def test_openjd_run_end_to_end_with_the_real_vrmbg(tmp_path):
    """The job runs the installed `vrmbg`; its mattes are those of a straight render, bit for bit.

    No readiness probe: if `vrmbg render` crashes under OpenJD, this test fails.
    """
    model = tmp_path / "model"
    made = subprocess.run([VRMBG, "model", "init-random", str(model), "--config", "tiny"],
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stdout + made.stderr
    (tmp_path / "plates").mkdir()
    _write_plates(tmp_path / "plates", "sh010", range(1001, 1004), seed=1)
    _write_plates(tmp_path / "plates", "sh020", range(1, 4), seed=2)
    shots = [{"name": "sh010", "input": "plates/sh010.####.exr",
              "output": "mattes/sh010.####.exr", "frames": "1001-1003"},
             {"name": "sh020", "input": "plates/sh020.####.exr",
              "output": "mattes/sh020.####.exr", "frames": "1-3"}]
    shotlist = make_shotlist(tmp_path, shots)
    job = tmp_path / "job.yaml"
    assert main(["job", "openjd", str(shotlist), "-o", str(job), "--device", "cpu"]) == 0
    result = openjd("run", job, "-p", f"VrmbgExecutable={VRMBG}", "-p", f"Model={model}",
                    cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "openjd_progress: 100" in result.stdout + result.stderr

    for name, spec in (("sh010", "1001-1003"), ("sh020", "1-3")):
        frames = list(parse_frame_spec(spec))
        job_output = str(tmp_path / "mattes" / f"{name}.####.exr")
        assert [os.path.isfile(path) for path in expected_frames(tmp_path, name, spec)] == [
            True] * len(frames)
        straight = str(tmp_path / "straight" / f"{name}.####.exr")
        rendered = subprocess.run(
            [VRMBG, "render", str(tmp_path / "plates" / f"{name}.####.exr"), "-o", straight,
             "--frames", spec, "--model", str(model), "--device", "cpu",
             "--cache-dir", str(tmp_path / "straight-cache" / name), "--json"],
            capture_output=True, text=True, timeout=300)
        assert rendered.returncode == 0, rendered.stdout + rendered.stderr
        summary = json.loads(rendered.stdout)
        assert summary["frames_computed"] == len(frames), summary  # nothing borrowed
        for frame, alpha in read_frames(job_output, frames).items():
            assert alpha.shape == (24, 40), frame
            assert np.isfinite(alpha).all(), frame
            assert 0.0 <= float(alpha.min()) and float(alpha.max()) <= 1.0, frame
        assert_same_mattes(straight, job_output, frames)


def test_plates_outputs_and_cache_are_path_job_parameters(tmp_path):
    """The farm's path mapping applies to PATH parameters: a task renders whatever path the
    job is submitted with, and the defaults are the shot list's paths."""
    fake, log = make_fake_vrmbg(tmp_path)
    job = write_template(tmp_path, "--cache-dir", str(tmp_path / "shared cache"))
    template = yaml.safe_load(job.read_text())
    params = {p["name"]: p for p in template["parameterDefinitions"]}
    assert {k: params["sh010PlatesDir"][k] for k in ("type", "objectType", "dataFlow",
                                                     "default")} == {
        "type": "PATH", "objectType": "DIRECTORY", "dataFlow": "IN", "default": "plates"}
    assert params["sh010Plates"] == {**params["sh010Plates"], "type": "STRING",
                                     "default": "sh010.####.exr"}
    assert params["sh020OutputDir"]["dataFlow"] == "OUT"
    assert params["sh020OutputDir"]["default"] == "mattes"
    assert params["sh020Output"]["default"] == "sh020.####.exr"
    assert params["CacheDir"]["default"] == "shared cache"
    assert params["CacheDir"]["dataFlow"] == "INOUT"
    mapped = tmp_path / "mapped ü"
    mapped.mkdir()
    result = openjd("run", job, "-p", f"VrmbgExecutable={fake}", "-p", f"sh010OutputDir={mapped}",
                    "--step", "sh010", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    (call,) = read_calls(log)
    assert call[1:4] == [str(tmp_path / "plates" / "sh010.####.exr"), "-o",
                         str(mapped / "sh010.####.exr")]
    assert flag(call, "cache-dir") == str(tmp_path / "shared cache")


def test_a_job_bundle_checks_and_its_paths_follow_the_farms_path_mapping(tmp_path):
    """A Deadline Cloud bundle: template, parameter values and asset references; under
    `openjd run --path-mapping-rules` the task reads and writes the mapped folders."""
    fake, log = make_fake_vrmbg(tmp_path)
    shotlist = make_shotlist(tmp_path)
    model = tmp_path / "models" / "vrmbg3"
    model.mkdir(parents=True)
    bundle = tmp_path / "bundle"
    assert main(["job", "openjd", str(shotlist), "-o", str(bundle), "--bundle", "--no-check",
                 "--model", str(model), "--cache-dir", str(tmp_path / "cache")]) == 0
    assert sorted(os.listdir(bundle)) == ["asset_references.yaml", "parameter_values.yaml",
                                          "template.yaml"]
    template = bundle / "template.yaml"
    assert openjd("check", template).returncode == 0
    params = {p["name"]: p for p in yaml.safe_load(template.read_text())["parameterDefinitions"]}
    assert params["Model"]["type"] == "PATH" and params["Model"]["objectType"] == "DIRECTORY"
    values = {v["name"]: v["value"]
              for v in yaml.safe_load((bundle / "parameter_values.yaml").read_text())[
                  "parameterValues"]}
    assert values["sh010PlatesDir"] == str(tmp_path / "plates")
    assert values["Model"] == str(model)
    refs = yaml.safe_load((bundle / "asset_references.yaml").read_text())["assetReferences"]
    assert str(tmp_path / "plates") in refs["inputs"]["directories"]
    assert str(tmp_path / "mattes") in refs["outputs"]["directories"]
    # The farm sees the project under another root: every PATH parameter moves with it.
    farm = tmp_path / "farm root"
    shutil.copytree(tmp_path / "models", farm / "models")
    (farm / "mattes").mkdir()
    rules = {"version": "pathmapping-1.0", "path_mapping_rules": [
        {"source_path_format": "POSIX", "source_path": str(tmp_path),
         "destination_path": str(farm)}]}
    result = openjd("run", template, "-p", f"VrmbgExecutable={fake}",
                    *[arg for name, value in values.items() for arg in ("-p", f"{name}={value}")],
                    "--path-mapping-rules", json.dumps(rules), "--step", "sh010", cwd=bundle)
    assert result.returncode == 0, result.stdout + result.stderr
    (call,) = read_calls(log)
    assert call[1:4] == [str(farm / "plates" / "sh010.####.exr"), "-o",
                         str(farm / "mattes" / "sh010.####.exr")]
    assert flag(call, "model") == str(farm / "models" / "vrmbg3")
    assert flag(call, "cache-dir") == str(farm / "cache")


def test_a_shots_cuts_and_edge_settings_reach_its_task_only(tmp_path):
    """An edit's cut list, cut detection and the colour-guided edges of one shot of a shot
    list reach that shot's `vrmbg render` on the farm, and no other shot's."""
    fake, log = make_fake_vrmbg(tmp_path)
    make_shotlist(tmp_path, [
        {"name": "sh010", "input": "plates/sh010.####.exr", "output": "mattes/sh010.####.exr",
         "frames": "1001-1005", "cuts": "1003", "detect_cuts": True,
         "upsample": "guided-colour"},
        {"name": "sh020", "input": "plates/sh020.####.exr", "output": "mattes/sh020.####.exr",
         "frames": "1-7x2"},
    ])
    job = tmp_path / "job.yaml"
    assert main(["job", "openjd", str(tmp_path / "shots.json"), "-o", str(job),
                 "--no-check"]) == 0
    result = openjd("run", job, "-p", f"VrmbgExecutable={fake}", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    calls = {flag(args, "frames"): args for args in read_calls(log)}
    sh010, sh020 = calls["1001-1005"], calls["1-7x2"]
    assert flag(sh010, "cuts") == "1003" and flag(sh010, "upsample") == "guided-colour"
    assert "--detect-cuts" in sh010
    for name in ("--cuts", "--upsample", "--detect-cuts"):
        assert not any(a.startswith(name) for a in sh020), name


@pytest.mark.slow
def test_chunks_of_a_per_frame_model_are_exact_in_any_order_on_the_farm(tmp_path):
    """Public per-frame weights need no chain: pre-roll chunks, the last one run first, give a
    straight render's mattes bit for bit and are labelled exact."""
    from vrmbg.core.io.mattes import read_matte_stamp
    from vrmbg.core.model import ModelConfig, init_random

    model = init_random(str(tmp_path / "per-frame"),
                        ModelConfig.preset("tiny").replace(in_channels=3), seed=5)
    (tmp_path / "plates").mkdir()
    _write_plates(tmp_path / "plates", "sh010", range(1001, 1006), seed=3)
    shotlist = make_shotlist(tmp_path, [{"name": "sh010", "input": "plates/sh010.####.exr",
                                         "output": "mattes/sh010.####.exr",
                                         "frames": "1001-1005"}])
    job = tmp_path / "job.yaml"
    assert main(["job", "openjd", str(shotlist), "-o", str(job), "--device", "cpu",
                 "--chunk", "2", "--preroll", "2"]) == 0
    result = openjd("run", job, "-p", f"VrmbgExecutable={VRMBG}", "-p", f"Model={model}",
                    "--step", "sh010 part 003", cwd=tmp_path)  # the last chunk on its own
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    for part in ("sh010 part 001", "sh010 part 002"):
        result = openjd("run", job, "-p", f"VrmbgExecutable={VRMBG}", "-p", f"Model={model}",
                        "--step", part, cwd=tmp_path)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    straight = str(tmp_path / "straight" / "sh010.####.exr")
    rendered = subprocess.run(
        [VRMBG, "render", str(tmp_path / "plates" / "sh010.####.exr"), "-o", straight,
         "--model", model, "--device", "cpu", "--cache-dir", str(tmp_path / "straight-cache")],
        capture_output=True, text=True, timeout=300)
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    frames = list(range(1001, 1006))
    assert_same_mattes(straight, str(tmp_path / "mattes" / "sh010.####.exr"), frames)
    for path in expected_frames(tmp_path, "sh010", "1001-1005"):
        stamp = read_matte_stamp(path)
        assert stamp["exact"] == 1 and stamp["model_kind"] == "per-frame", path
