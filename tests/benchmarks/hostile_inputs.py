"""Hostile input: `vrmbg info` and `vrmbg render` on every broken plate we derive.

Writes good EXR (scanline, tiled, multi-part), DPX and PNG plates, derives several hundred
broken files from them (see tests/hostile_cases.py: truncations at every structure boundary,
byte flips in headers and offset tables, absurd sizes and counts, wrong magic, zero bytes)
and runs both commands on each in a child process with a time limit. Prints one JSON object:
`cases`, `runs`, `ok`, `refused` (exit 3 with a one-line message naming file and frame),
`read` (the damage left a readable image, exit 0), `tracebacks`, `signals`, `hangs`,
`wrong_exit_codes`, `bad_messages`, `debris`, and up to 20 `failures` with their stderr.

`--render-sample N` renders only a seeded spread of N cases (every kind of damage) and runs
`info` on all: on a busy machine each render costs a torch start-up.

Run: python tests/benchmarks/hostile_inputs.py [--seed 14] [--jobs 2] [--limit N]
     [--render-sample N] [--no-render]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from hostile_cases import all_cases, run_case, sample  # noqa: E402
from render_helpers import make_model  # noqa: E402


def main() -> None:
    """Run the whole set (or `--limit` cases of it) and print the counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--jobs", type=int, default=2, help="cases run at once")
    parser.add_argument("--limit", type=int, default=0, help="a sample of N cases (0 = all)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per command")
    parser.add_argument("--no-render", action="store_true", help="run `vrmbg info` only")
    parser.add_argument("--render-sample", type=int, default=0,
                        help="render only a spread of N cases (0 = render every case)")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vrmbg hostile ä ") as root:
        model = make_model(os.path.join(root, "model"))
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
    print(json.dumps(counts, indent=2))


if __name__ == "__main__":
    main()
