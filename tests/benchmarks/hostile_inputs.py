"""Hostile input: broken plates, an abusive worker protocol, hostile file systems.

Section `plates`: writes good EXR (scanline, tiled, multi-part), DPX and PNG plates, derives
several hundred broken files from them (see tests/support/hostile_cases.py: truncations at every
structure boundary, byte flips in headers and offset tables, absurd sizes and counts, wrong
magic, zero bytes) and runs `vrmbg info` and `vrmbg render` on each in a child process with a
time limit. Counts, under `plates`: `cases`, `runs`, `ok`, `refused` (exit 3 with a one-line
message naming file and frame), `read` (the damage left a readable image, exit 0),
`tracebacks`, `signals`, `hangs`, `wrong_exit_codes`, `bad_messages`, `debris`, and up to 20
`failures` with their stderr.

`--render-sample N` renders only a seeded spread of N cases (every kind of damage) and runs
`info` on all: on a busy machine each render costs a torch start-up.

Two more sections (issue 25), in the same JSON object under their own keys:

- `protocol` (tests/benchmarks/hostile_protocol.py): one real `vrmbg worker` fed abusive
  lines (not JSON, lone surrogates, NUL, JSON nested 100,000 deep, lines over 1 MiB, unknown
  ops and fields, wrong types, frames far outside the shot, plates in a folder whose name is
  not UTF-8, `trust_remote_code` in settings), one by one, in a burst, and 2,000 pipelined
  `status` requests: `lines`, `answered`, `internal_errors`, `tracebacks`, `hangs`,
  `worker_deaths`, `duplicates`, `unexpected_answers`.
- `files` (tests/benchmarks/hostile_files.py): symlinks out of a cache, `vrmbg cache` on
  folders that are not caches, renders whose output names the plates, renders killed with
  SIGKILL, a full disk (a 2 MiB tmpfs where `mount` is allowed): `cases`,
  `files_touched_outside`, `lost_or_partial_mattes`, `tracebacks`, `hangs`,
  `wrong_exit_codes`.

`totals` adds up what must be zero across the sections.

Run: python tests/benchmarks/hostile_inputs.py [--sections plates,protocol,files] [--seed 14]
     [--jobs 2] [--limit N] [--render-sample N] [--no-render] [--timeout S]
     [--protocol-timeout S] [--files-cases symlinks,foreign,overwrite,killed,full_disk]
     [--details]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

_HERE = os.path.dirname(os.path.abspath(__file__))
for _folder in (os.path.join(_HERE, "..", "support"), os.path.join(_HERE, ".."), _HERE):
    if os.path.normpath(_folder) not in map(os.path.normpath, sys.path):
        sys.path.insert(0, _folder)

from hostile_cases import all_cases, run_case, sample  # noqa: E402
from hostile_files import CASES as FILE_CASES  # noqa: E402
from hostile_files import run_files  # noqa: E402
from hostile_protocol import run_protocol  # noqa: E402
from render_helpers import make_model  # noqa: E402

SECTIONS = ("plates", "protocol", "files")


def plates_section(args, root: str, model: str) -> dict:
    """`vrmbg info` and `vrmbg render` on every broken plate (or a sample)."""
    started = time.monotonic()
    cases = all_cases(os.path.join(root, "sources"), seed=args.seed)
    if args.limit:
        cases = sample(cases, args.limit, seed=args.seed)
    rendered = {c.name for c in (sample(cases, args.render_sample, seed=args.seed)
                                 if args.render_sample else cases)}

    def one(indexed):
        index, case = indexed
        return run_case(case, os.path.join(root, f"case {index}"), model,
                        timeout=args.timeout,
                        render=not args.no_render and case.name in rendered)

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        outcomes = [o for group in pool.map(one, enumerate(cases)) for o in group]
    counts = {"cases": len(cases), "runs": len(outcomes), "seed": args.seed,
              "info_runs": sum(1 for o in outcomes if o.command == "info"),
              "render_runs": sum(1 for o in outcomes if o.command == "render")}
    problems = [o for o in outcomes if o.problems]
    counts["ok"] = len(outcomes) - len(problems)
    counts["refused"] = sum(1 for o in outcomes if o.exit_code == 3 and not o.problems)
    counts["read"] = sum(1 for o in outcomes if o.exit_code == 0 and not o.problems)
    for key, word in (("tracebacks", "traceback"), ("signals", "signal"), ("hangs", "hang"),
                      ("wrong_exit_codes", "wrong exit code")):
        counts[key] = sum(1 for o in outcomes if word in o.problems)
    counts["bad_messages"] = sum(1 for o in outcomes if any("message" in p or "line" in p
                                                             for p in o.problems))
    counts["debris"] = sum(1 for o in outcomes if any("left" in p or "written" in p
                                                       or "changed" in p for p in o.problems))
    counts["seconds"] = round(time.monotonic() - started, 1)
    counts["failures"] = [{"case": o.case, "command": o.command, "exit_code": o.exit_code,
                           "problems": o.problems, "stderr": o.stderr[-600:]}
                          for o in problems[:20]]
    return counts


def guarded(name: str, body) -> dict:
    """A section's counts; its own crash is recorded, not fatal."""
    started = time.monotonic()
    try:
        return body()
    except Exception as exc:  # the benchmark's own failure: say so and go on
        import traceback

        return {"error": f"{type(exc).__name__}: {exc}", "section_crashed": 1,
                "seconds": round(time.monotonic() - started, 1),
                "failures": [{"case": name, "problems": ["section crashed"],
                              "stderr": traceback.format_exc()[-1200:]}]}


def totals(result: dict) -> dict:
    """What must be zero, added up over the sections that ran."""
    plates = result.get("plates", {})
    protocol = result.get("protocol", {})
    files = result.get("files", {})
    total = {
        "tracebacks": sum(s.get("tracebacks", 0) for s in (plates, protocol, files)),
        "hangs": sum(s.get("hangs", 0) for s in (plates, protocol, files)),
        "internal_errors": protocol.get("internal_errors", 0),
        "worker_deaths": protocol.get("worker_deaths", 0),
        "lost_or_partial_mattes": files.get("lost_or_partial_mattes", 0),
        "files_touched_outside": files.get("files_touched_outside", 0)
        + len(protocol.get("root_folder_changed", [])),
        "wrong_exit_codes": plates.get("wrong_exit_codes", 0) + files.get("wrong_exit_codes", 0),
        "temp_files_left": plates.get("debris", 0) + files.get("debris", 0),
        "duplicate_or_unexpected_answers": protocol.get("duplicates", 0)
        + protocol.get("unexpected_answers", 0),
        "sections_crashed": sum(s.get("section_crashed", 0) for s in (plates, protocol, files)),
    }
    total["all_zero"] = not any(v for v in total.values())
    return total


def main() -> None:
    """Run the chosen sections and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help="comma-separated: plates, protocol, files (default: all)")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--jobs", type=int, default=2, help="plate cases run at once")
    parser.add_argument("--limit", type=int, default=0, help="a sample of N plate cases (0 = all)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per command")
    parser.add_argument("--protocol-timeout", type=float, default=60.0,
                        help="seconds to wait for the worker's answer to one line")
    parser.add_argument("--no-render", action="store_true",
                        help="plates: run `vrmbg info` only")
    parser.add_argument("--render-sample", type=int, default=0,
                        help="plates: render only a spread of N cases (0 = every case)")
    parser.add_argument("--files-cases", default=",".join(FILE_CASES),
                        help=f"comma-separated file-system cases: {', '.join(FILE_CASES)}")
    parser.add_argument("--details", action="store_true",
                        help="protocol: list the answer to every line")
    args = parser.parse_args()
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    file_cases = [c.strip() for c in args.files_cases.split(",") if c.strip()]
    unknown += sorted(set(file_cases) - set(FILE_CASES))
    if unknown:
        parser.error(f"unknown section or case: {', '.join(unknown)}")
    started = time.monotonic()
    result: dict = {"sections": sections}
    with tempfile.TemporaryDirectory(prefix="vrmbg hostile ä ") as root:
        model = make_model(os.path.join(root, "model"))
        for name in sections:
            folder = os.path.join(root, name)
            os.makedirs(folder)
            if name == "plates":
                result[name] = guarded(name, lambda: plates_section(args, folder, model))
            elif name == "protocol":
                result[name] = guarded(name, lambda: run_protocol(
                    folder, model, timeout=args.protocol_timeout, details=args.details))
            else:
                result[name] = guarded(name, lambda: run_files(
                    folder, model, timeout=args.timeout, only=file_cases))
    result["totals"] = totals(result)
    result["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
