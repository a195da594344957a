"""Hostile file systems: what `vrmbg render` and `vrmbg cache` do to files that are not theirs.

Every case runs real `vrmbg` commands in child processes, each with a time limit, and hashes
the files it must not touch before and after (links are never followed; a link's target text
is part of the snapshot). Cases (issue 25):

- `symlinks`: a real render's cache whose shot, tier or chain folder, `matte/`, `state/` or
  `chain.lock` is a symbolic link to a decoy outside it; `cache prune --max-size 0`,
  `cache clear --all` (expect exit 0) and a `render` into it, once with every frame cached
  behind the link (exit 0 or 5) and once with frames left to compute (exit 5), leave every
  decoy byte-identical.
- `foreign`: `cache prune --max-size 0` and `cache clear --all` on an ordinary project folder
  (`shotA/final/x.txt`, `shotB/preview/y.txt`, a chain-shaped folder) and on a home-like folder
  ($HOME points at it; the real home is never touched), by `--cache-dir` and by $VRMBG_CACHE,
  a render with the home folder as cache, and `cache ls --cache-dir /` (ls only): nothing
  changes, every exit code is non-zero (2).
- `overwrite`: `render p/plate.####.exr -o p/plate.%04d.exr --overwrite` and the spellings
  `####`, `@@@@`, `$F4`, `#`, and the plate folder reached through a symlink: plates unchanged
  and nothing new in their folder, exit non-zero (5).
- `killed`: a render SIGKILLed after its first new matte appears (or its first temp file), 5
  times, then run to completion: no `.vrmbg-tmp-` file left in the output folder or its
  cache, every matte whole and equal to a straight render, decoys
  (`x.vrmbg-tmp-keep.exr`, `.m.1001.vrmbg-tmp-keep.exr`) kept.
- `full_disk`: a render into a 2 MiB tmpfs (when `mount` is allowed) with the cache outside
  it and with the cache beside the output inside it: exit 75, every matte left whole, the
  `--json` summary counting no frame as written that is not whole and no temp file left; the
  output is then copied to a bigger folder, the tmpfs unmounted, the render run again there:
  exit 0 and every matte equal to a straight render.

`run_files(root, model, timeout)` returns the counts and the failures (see `summary`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

_HERE = os.path.dirname(os.path.abspath(__file__))
for _folder in (os.path.join(_HERE, "..", "support"), os.path.join(_HERE, "..")):
    if os.path.normpath(_folder) not in map(os.path.normpath, sys.path):
        sys.path.insert(0, _folder)

from render_helpers import clean_env, make_plates  # noqa: E402

TEMP_MARKER = ".vrmbg-tmp-"
# The exact names vrmbg gives its temp files (core/fs.py): .<name>.vrmbg-tmp-<pid>-<8 hex>.<ext>
TEMP_NAME = re.compile(r"^\..+" + re.escape(TEMP_MARKER) + r"[0-9]+-[0-9a-f]{8}(\.[A-Za-z0-9]+)?$")
DECOY_TEMPS = ("x.vrmbg-tmp-keep.exr", ".m.1001.vrmbg-tmp-keep.exr")
EXIT_OUTPUT, EXIT_USAGE, EXIT_RETRY = 5, 2, 75
FIRST = 1001
TMPFS_SIZE = "2m"


# --------------------------------------------------------------------------- bookkeeping

@dataclass
class Outcome:
    """One command (or check) of one case, and what went wrong."""

    case: str
    command: str
    exit_code: int | None = None
    problems: list[str] = field(default_factory=list)
    stderr: str = ""
    kinds: set[str] = field(default_factory=set)  # counters this outcome adds to

    def fail(self, kind: str, text: str) -> None:
        """Record a problem counted under `kind`."""
        self.kinds.add(kind)
        self.problems.append(text)


@dataclass
class Run:
    """A finished child process."""

    code: int | None
    out: str
    err: str
    hung: bool
    seconds: float


class Files:
    """Collects outcomes; runs vrmbg child processes with a time limit."""

    def __init__(self, root: str, model: str, timeout: float) -> None:
        self.root, self.model, self.timeout = root, model, timeout
        self.home = os.path.join(root, "home")
        os.makedirs(self.home, exist_ok=True)
        self.outcomes: list[Outcome] = []
        self.notes: dict[str, object] = {}
        self.cases = 0

    def env(self, **extra: str) -> dict[str, str]:
        """The child environment: no vrmbg variables, $HOME a temp folder, quiet progress."""
        env = clean_env(HOME=self.home, **extra)
        env.pop("XDG_CACHE_HOME", None)
        return env

    def run(self, args: Sequence[str], *, env: dict[str, str] | None = None,
            cwd: str | None = None, timeout: float | None = None) -> Run:
        """`python -m vrmbg.core ARGS` with a time limit (killed, whole group, on a hang)."""
        began = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "vrmbg.core", *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env or self.env(), cwd=cwd or self.root,
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout or self.timeout)
            hung = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            hung = True
        return Run(None if hung else proc.returncode, out.decode("utf-8", "replace"),
                   err.decode("utf-8", "replace"), hung, time.monotonic() - began)

    def outcome(self, case: str, command: str, run: Run | None = None,
                expect: Iterable[int] | None = None) -> Outcome:
        """A new outcome; with `run`, check hang, signal, traceback and the exit code."""
        o = Outcome(case, command)
        self.outcomes.append(o)
        if run is None:
            return o
        o.exit_code, o.stderr = run.code, run.err
        if run.hung:
            o.fail("hangs", f"hang: no exit within {self.timeout:.0f} s")
        elif run.code is not None and run.code < 0:
            o.fail("signals", f"signal {-run.code}")
        if "Traceback (most recent call last)" in run.err:
            o.fail("tracebacks", "traceback")
        expected = set(expect) if expect is not None else None
        if expected is not None and not run.hung and run.code not in expected:
            o.fail("wrong_exit_codes",
                   f"wrong exit code {run.code} (expected {'/'.join(map(str, sorted(expected)))})")
        return o

    def guarded(self, case: str, body: Callable[[], None]) -> None:
        """Run one case; its own crash is recorded, not fatal."""
        self.cases += 1
        try:
            body()
        except Exception as exc:  # the benchmark's own failure: say so and go on
            o = self.outcome(case, "(benchmark)")
            o.fail("case_errors", f"case crashed: {type(exc).__name__}: {exc}")

    def render_args(self, plates: str, output: str, *extra: str) -> list[str]:
        """`vrmbg render` on the CPU with the tiny model at 64, quiet progress."""
        return ["render", plates, "-o", output, "--model", self.model, "--device", "cpu",
                "--resolution", "64", "--progress", "quiet", *extra]


# --------------------------------------------------------------------------- file helpers

def snapshot(folder: str) -> dict[str, tuple]:
    """Every entry below `folder` (itself included): files by size and SHA-256, links by
    target, folders by name. Links are never followed."""
    found: dict[str, tuple] = {}
    if os.path.islink(folder):
        return {".": ("link", os.readlink(folder))}
    if not os.path.isdir(folder):
        return {}
    for base, dirs, files in os.walk(folder):
        rel_base = os.path.relpath(base, folder)
        found[rel_base] = ("dir",)
        for name in dirs + files:
            path = os.path.join(base, name)
            rel = os.path.normpath(os.path.join(rel_base, name))
            if os.path.islink(path):
                found[rel] = ("link", os.readlink(path))
            elif name in files:
                found[rel] = ("file",) + file_digest(path)
    return found


def file_digest(path: str) -> tuple[int, str]:
    """(size, sha256) of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return os.path.getsize(path), digest.hexdigest()


def changes(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    """What differs between two snapshots, in words (first few)."""
    lines = []
    for rel in sorted(set(before) | set(after)):
        if rel not in after:
            lines.append(f"removed {rel}")
        elif rel not in before:
            lines.append(f"created {rel}")
        elif before[rel] != after[rel]:
            lines.append(f"changed {rel}")
    return lines


def temp_files(folder: str) -> list[str]:
    """Files below `folder` whose name holds `.vrmbg-tmp-`, except the decoys."""
    found = []
    for base, _dirs, files in os.walk(folder):
        for name in files:
            if TEMP_MARKER in name and name not in DECOY_TEMPS:
                found.append(os.path.relpath(os.path.join(base, name), folder))
    return sorted(found)


def is_whole(path: str) -> bool:
    """The engine's own 'is this EXR whole' check."""
    from vrmbg.core.io.exr_whole import is_whole as whole

    return whole(path)


def matte_pixels(path: str) -> bytes | None:
    """The pixels of an EXR (read with OpenImageIO), or None when it cannot be read."""
    import numpy as np
    import OpenImageIO as oiio

    image = oiio.ImageInput.open(path)
    if image is None:
        oiio.geterror()
        return None
    try:
        pixels = image.read_image(oiio.FLOAT)
        return None if pixels is None else np.asarray(pixels, np.float32).tobytes()
    finally:
        image.close()


def frame_list(text: str) -> list[int]:
    """'1001-1003,1005' (the summary's spelling) -> frames."""
    frames: list[int] = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        match = re.fullmatch(r"(-?\d+)(?:-(-?\d+))?(?:x(\d+))?", part)
        if not match:
            continue
        first = int(match.group(1))
        last = int(match.group(2) or first)
        frames += list(range(first, last + 1, int(match.group(3) or 1)))
    return frames


def frame_name(pattern: str, frame: int) -> str:
    return pattern.replace("####", f"{frame:04d}")


def matte_frames(folder: str, prefix: str = "m.") -> list[int]:
    """Frame numbers of the `prefix####.exr` mattes in `folder`."""
    frames = []
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        match = re.fullmatch(re.escape(prefix) + r"(\d+)\.exr", name)
        if match:
            frames.append(int(match.group(1)))
    return sorted(frames)


def json_summary(text: str) -> dict | None:
    """The `--json` object printed on stdout (the last line that parses), or None."""
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    try:
        value = json.loads(text)
        return value if isinstance(value, dict) else None
    except ValueError:
        return None


def compare_to_reference(o: Outcome, pattern: str, reference: str, frames: Iterable[int]) -> None:
    """Every frame present, whole and pixel-identical to the straight render."""
    missing, partial, differ = [], [], []
    for frame in frames:
        path = frame_name(pattern, frame)
        if not os.path.isfile(path):
            missing.append(frame)
        elif not is_whole(path):
            partial.append(frame)
        elif matte_pixels(path) != matte_pixels(frame_name(reference, frame)):
            differ.append(frame)
    if missing or partial:
        o.fail("lost_or_partial_mattes", f"mattes missing {missing[:8]} or not whole "
                                         f"{partial[:8]} after the final run")
    if differ:
        o.fail("mattes_differ", f"mattes differ from a straight render: {differ[:8]}")


# --------------------------------------------------------------------------- (a) symlinks

LINK_LEVELS = ("shot", "tier", "chain", "matte", "state", "lock", "lock_file")


def case_symlinks(f: Files, plates: str) -> None:
    """Symlinked shot/tier/chain/matte/state folders and chain.lock: decoys untouched."""
    base = os.path.join(f.root, "symlinks")
    base_cache = os.path.join(base, "base-cache")
    run = f.run(f.render_args(plates, os.path.join(base, "base-out", "m.####.exr"),
                              "--cache-dir", base_cache))
    o = f.outcome("symlinks", "render (setup)", run, expect=[0])
    if run.code != 0:
        return
    shot = next(n for n in os.listdir(base_cache) if os.path.isdir(os.path.join(base_cache, n)))
    chain = os.listdir(os.path.join(base_cache, shot, "final"))[0]
    del o
    commands = {
        "prune": (["cache", "prune", "--max-size", "0"], [0]),
        "clear": (["cache", "clear", "--all"], [0]),
        # every frame cached behind the link: nothing to compute, so exit 0 may be right,
        # as long as nothing is written through the link (the decoy check)
        "render": (None, [0, EXIT_OUTPUT]),
        "render-compute": (None, [EXIT_OUTPUT]),  # frames 1004- to compute into it
    }
    for level in LINK_LEVELS:
        for command, (args, expect) in commands.items():
            name = f"symlinks/{level}/{command}"

            def body(level=level, command=command, args=args, expect=expect, name=name):
                work = os.path.join(base, f"{level}-{command}")
                cache = os.path.join(work, "cache")
                outside = os.path.join(work, "outside")
                shutil.copytree(base_cache, cache, symlinks=True)
                os.makedirs(outside)
                if command == "render-compute":
                    forget_frames(os.path.join(cache, shot, "final", chain), FIRST + 3)
                plant_link(cache, shot, chain, level, outside)
                before = snapshot(outside)
                if args is None:
                    full = f.render_args(plates, os.path.join(work, "out", "m.####.exr"),
                                         "--cache-dir", cache, "--json")
                else:
                    full = [*args, "--cache-dir", cache, "--json"]
                run = f.run(full)
                o = f.outcome(name, " ".join(full[:4]), run, expect=expect)
                diff = changes(before, snapshot(outside))
                if diff:
                    o.fail("files_touched_outside", "decoy changed: " + "; ".join(diff[:4]))

            f.guarded(name, body)


def forget_frames(chain_dir: str, first: int) -> None:
    """Remove the cached mattes and states of frames from `first` on."""
    for sub in ("matte", "state"):
        folder = os.path.join(chain_dir, sub)
        for name in os.listdir(folder):
            match = re.search(r"(?:^|\.)(\d+)(?:_|\.exr$)", name)
            if match and int(match.group(1)) >= first:
                os.remove(os.path.join(folder, name))


def plant_link(cache: str, shot: str, chain: str, level: str, outside: str) -> None:
    """Move one part of the cache outside (the decoy) and leave a symlink in its place."""
    chain_dir = os.path.join(cache, shot, "final", chain)
    where = {"shot": os.path.join(cache, shot), "tier": os.path.join(cache, shot, "final"),
             "chain": chain_dir, "matte": os.path.join(chain_dir, "matte"),
             "state": os.path.join(chain_dir, "state")}
    if level in where:
        decoy = os.path.join(outside, f"{level}-decoy")
        shutil.move(where[level], decoy)
        os.symlink(decoy, where[level])
        return
    lock = os.path.join(chain_dir, "chain.lock")
    if os.path.lexists(lock):
        os.remove(lock)
    decoy = os.path.join(outside, "lock-decoy")
    os.makedirs(decoy)
    with open(os.path.join(decoy, "keep.txt"), "w") as handle:
        handle.write("not vrmbg's\n")
    if level == "lock":  # a dangling link: nothing may be created through it
        os.symlink(os.path.join(decoy, "planted.lock"), lock)
    else:  # a link to someone's file: it may not be written or removed
        with open(os.path.join(decoy, "victim.lock"), "w") as handle:
            handle.write("someone else's file\n")
        os.symlink(os.path.join(decoy, "victim.lock"), lock)


# --------------------------------------------------------------------------- (b) foreign

def fill(folder: str, files: Iterable[str]) -> None:
    for rel in files:
        path = os.path.join(folder, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(f"work of someone else: {rel}\n")


def case_foreign(f: Files, plates: str) -> None:
    """The cache commands on folders that are not caches: nothing changes, exit non-zero."""
    base = os.path.join(f.root, "foreign")
    project = os.path.join(base, "project")
    fill(project, ["shotA/final/x.txt", "shotB/preview/y.txt", "shotA/final/v002/comp.exr",
                   "notes.txt", "shotC/final/0123456789abcdef/chain.json",
                   "shotC/final/0123456789abcdef/matte/shotC.1001.exr",
                   "shotC/final/0123456789abcdef/state/1001_1001_ab.npy"])
    fill(f.home, [".bashrc", ".config/app/settings.ini", "Documents/shotA/final/z.txt",
                  "Documents/shotB/preview/w.txt", ".cache/other-app/blob"])
    watched = {"project": project, "home": f.home, "cwd": os.path.join(base, "cwd")}
    os.makedirs(watched["cwd"], exist_ok=True)
    env_home = f.env()
    cases = []
    for label, folder in (("project", project), ("home", f.home),
                          ("home/Documents", os.path.join(f.home, "Documents"))):
        for action in (["prune", "--max-size", "0"], ["clear", "--all"]):
            cases.append((f"foreign/{label}/{action[0]}/--cache-dir",
                          ["cache", *action, "--cache-dir", folder], env_home, [EXIT_USAGE]))
            cases.append((f"foreign/{label}/{action[0]}/VRMBG_CACHE",
                          ["cache", *action], f.env(VRMBG_CACHE=folder), [EXIT_USAGE]))
    cases.append(("foreign/file-as-folder/clear",
                  ["cache", "clear", "--all", "--cache-dir",
                   os.path.join(project, "notes.txt")], env_home, [EXIT_USAGE]))
    cases.append(("foreign/home/render", f.render_args(
        plates, os.path.join(base, "render-out", "m.####.exr"), "--cache-dir", f.home),
        env_home, [EXIT_USAGE]))
    for name, args, env, expect in cases:
        def body(name=name, args=args, env=env, expect=expect):
            before = {k: snapshot(v) for k, v in watched.items()}
            run = f.run(args, env=env, cwd=watched["cwd"])
            o = f.outcome(name, " ".join(args[:4]), run, expect=expect)
            for key, folder in watched.items():
                diff = changes(before[key], snapshot(folder))
                if diff:
                    o.fail("files_touched_outside", f"{key} changed: " + "; ".join(diff[:4]))

        f.guarded(name, body)

    def root_ls():
        before = sorted(os.listdir("/"))
        run = f.run(["cache", "ls", "--cache-dir", "/"], env=env_home, cwd=watched["cwd"])
        o = f.outcome("foreign/root/ls", "cache ls --cache-dir /", run, expect=[EXIT_USAGE])
        after = sorted(os.listdir("/"))
        if before != after:
            o.fail("files_touched_outside", f"/ changed: {sorted(set(after) ^ set(before))}")

    f.guarded("foreign/root/ls", root_ls)


# --------------------------------------------------------------------------- (c) overwrite

def case_overwrite(f: Files) -> None:
    """A render whose output names the plates (any spelling, through a link): refused."""
    base = os.path.join(f.root, "overwrite")
    plate_dir = os.path.join(base, "p")
    make_plates(plate_dir, range(FIRST, FIRST + 4), name="plate.####.exr")
    link = os.path.join(base, "link")
    os.symlink(plate_dir, link)
    plates = os.path.join(plate_dir, "plate.####.exr")
    spellings = [(plates, "p/plate.####.exr")]
    for spelling in ("plate.%04d.exr", "plate.@@@@.exr", "plate.$F4.exr", "plate.#.exr"):
        spellings.append((plates, os.path.join("p", spelling)))
    for spelling in ("plate.####.exr", "plate.%04d.exr"):
        spellings.append((plates, os.path.join("link", spelling)))
    spellings.append((os.path.join(link, "plate.####.exr"), "p/plate.####.exr"))
    spellings.append((plates, "p/plate.####.exr --frames 1002-1003"))
    for source, target in spellings:
        name = f"overwrite/{'link/' if source != plates else ''}{target}"

        def body(source=source, target=target, name=name):
            parts = target.split(" ")
            output = os.path.join(base, parts[0])
            cache = os.path.join(base, "cache")
            before = snapshot(plate_dir)
            args = f.render_args(source, output, "--overwrite", "--cache-dir", cache, *parts[1:])
            run = f.run(args)
            o = f.outcome(name, f"render {os.path.relpath(source, base)} -o {target} "
                                "--overwrite", run, expect=[EXIT_OUTPUT, EXIT_USAGE])
            if run.code == 0:
                o.fail("wrong_exit_codes", "exit 0: the render was not refused")
            diff = changes(before, snapshot(plate_dir))
            if diff:
                o.fail("files_touched_outside", "plates changed: " + "; ".join(diff[:4]))
                if any(line.startswith(("changed", "removed")) for line in diff):
                    o.kinds.add("plates_changed")
            if diff:  # put the plates back for the next spelling
                shutil.rmtree(plate_dir)
                make_plates(plate_dir, range(FIRST, FIRST + 4), name="plate.####.exr")

        f.guarded(name, body)


# --------------------------------------------------------------------------- (d) killed

def case_killed(f: Files, kills: int = 5, frames: int = 40) -> None:
    """SIGKILL a render `kills` times mid-way, then finish it: no temp files, whole mattes."""
    base = os.path.join(f.root, "killed")
    plates = make_plates(os.path.join(base, "p"), range(FIRST, FIRST + frames),
                         size=(512, 288))
    reference = os.path.join(base, "ref", "m.####.exr")
    ref = f.run(f.render_args(plates, reference))
    o = f.outcome("killed", "render (straight reference)", ref, expect=[0])
    if ref.code != 0:
        return
    out_dir = os.path.join(base, "out")
    os.makedirs(out_dir)
    decoys = {}
    for name in DECOY_TEMPS:
        path = os.path.join(out_dir, name)
        with open(path, "wb") as handle:
            handle.write(b"someone else's file that merely looks like a temp name\n")
        decoys[name] = file_digest(path)
    output = os.path.join(out_dir, "m.####.exr")
    args = f.render_args(plates, output)
    trials = []
    for trial in range(kills):
        o = f.outcome(f"killed/kill {trial + 1}", "render, SIGKILL")
        trials.append(kill_once(f, o, args, out_dir, on_temp=trial % 2 == 1))
    f.notes["killed_trials"] = trials
    left = temp_files(out_dir)
    f.notes["killed_temp_files_before_final_run"] = len(left)
    run = f.run(args + ["--json"])
    o = f.outcome("killed/final run", "render (to completion)", run, expect=[0])
    left = temp_files(out_dir)
    if left:
        o.fail("debris", f"temp files left after the final run: {left[:4]}")
    for name, digest in decoys.items():
        path = os.path.join(out_dir, name)
        if not os.path.isfile(path) or file_digest(path) != digest:
            o.fail("files_touched_outside", f"decoy {name} removed or changed")
    compare_to_reference(o, output, reference, range(FIRST, FIRST + frames))


def kill_once(f: Files, o: Outcome, args: list[str], out_dir: str, on_temp: bool) -> dict:
    """Start the render, SIGKILL it when a new matte (or, `on_temp`, a temp file in the output
    folder) appears; what happened."""
    had = set(matte_frames(out_dir))
    proc = subprocess.Popen([sys.executable, "-m", "vrmbg.core", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=f.env(),
                            cwd=f.root, start_new_session=True)
    deadline = time.monotonic() + f.timeout
    trigger = None
    while time.monotonic() < deadline and proc.poll() is None:
        names = os.listdir(out_dir)
        if on_temp and any(TEMP_NAME.match(n) for n in names):
            trigger = "temp file"
        elif set(matte_frames(out_dir)) - had:
            trigger = "new matte"
        if trigger:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.002)
    if proc.poll() is None and trigger is None:
        os.killpg(proc.pid, signal.SIGKILL)
        o.fail("hangs", f"no new matte within {f.timeout:.0f} s")
    proc.wait()
    err = proc.stderr.read().decode("utf-8", "replace")
    proc.stderr.close()
    o.exit_code, o.stderr = proc.returncode, err
    if "Traceback (most recent call last)" in err:
        o.fail("tracebacks", "traceback")
    if trigger is None and proc.returncode not in (0, -signal.SIGKILL):
        o.fail("wrong_exit_codes", f"exit {proc.returncode} before it could be killed")
    return {"killed_on": trigger or f"finished (exit {proc.returncode})",
            "mattes": len(matte_frames(out_dir)), "temp_files": len(temp_files(out_dir))}


# --------------------------------------------------------------------------- (e) full disk

def can_mount(folder: str) -> bool:
    """Mount (and unmount) a small tmpfs at `folder`: allowed here?"""
    os.makedirs(folder, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs",
                               folder], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    if done.returncode != 0:
        return False
    unmount(folder)
    return True


def unmount(folder: str) -> None:
    """Unmount `folder` (lazily when busy); nothing when it is not mounted."""
    if not os.path.ismount(folder):
        return
    if subprocess.run(["umount", folder], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", folder], capture_output=True)


def unmount_below(root: str) -> list[str]:
    """Unmount whatever is still mounted below `root` (a crashed case); what was."""
    found = []
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                point = line.split()[1].replace("\\040", " ")
                if point.startswith(os.path.abspath(root) + os.sep):
                    found.append(point)
    except OSError:
        return found
    for point in sorted(found, reverse=True):
        unmount(point)
    return found


def case_full_disk(f: Files, frames: int = 120) -> None:
    """Render into a tmpfs too small for the mattes, then finish in a bigger place."""
    base = os.path.join(f.root, "full disk")
    mount_point = os.path.join(base, "mnt")
    if not can_mount(mount_point):
        f.notes["full_disk"] = "skipped: cannot mount"
        return
    plates = make_plates(os.path.join(base, "p"), range(FIRST, FIRST + frames), size=(1024, 576))
    reference = os.path.join(base, "ref", "m.####.exr")
    ref = f.run(f.render_args(plates, reference))
    o = f.outcome("full_disk", "render (straight reference)", ref, expect=[0])
    if ref.code != 0:
        return
    ref_dir = os.path.dirname(reference)
    f.notes["full_disk_matte_bytes"] = sum(
        os.path.getsize(os.path.join(ref_dir, n)) for n in os.listdir(ref_dir)
        if n.endswith(".exr"))
    for variant in ("cache elsewhere", "cache beside output"):
        name = f"full_disk/{variant}"

        def body(variant=variant, name=name):
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs",
                            mount_point], check=True, capture_output=True)
            try:
                full_disk_variant(f, name, variant, plates, reference, mount_point,
                                  os.path.join(base, variant.replace(" ", "-")))
            finally:
                unmount(mount_point)

        f.guarded(name, body)


def full_disk_variant(f: Files, name: str, variant: str, plates: str, reference: str,
                      mount_point: str, work: str) -> None:
    out_dir = os.path.join(mount_point, "out")
    output = os.path.join(out_dir, "m.####.exr")
    extra = ["--cache-dir", os.path.join(work, "cache")] if variant == "cache elsewhere" else []
    run = f.run(f.render_args(plates, output, "--json", *extra))
    o = f.outcome(name, "render into a full tmpfs", run, expect=[EXIT_RETRY])
    on_disk = matte_frames(out_dir)
    partial = [fr for fr in on_disk if not is_whole(frame_name(output, fr))]
    if partial:
        o.fail("lost_or_partial_mattes", f"mattes left not whole: {partial[:8]}")
    summary = json_summary(run.out)
    if summary is None:
        o.fail("bad_summary", "no --json summary on stdout")
    else:
        written = frame_list(summary.get("frames_written", ""))
        bad = [fr for fr in written if fr not in on_disk or fr in partial]
        if bad:
            o.fail("lost_or_partial_mattes",
                   f"summary counts frames written that are missing or not whole: {bad[:8]}")
    left = temp_files(out_dir)
    if left:
        o.fail("debris", f"temp files left on the full disk: {left[:4]}")
    f.notes[f"full_disk/{variant}"] = {"exit": run.code, "mattes_left": len(on_disk),
                                       "not_whole": len(partial),
                                       "frames_written": (summary or {}).get("frames_written")}
    big = os.path.join(work, "big")
    shutil.copytree(out_dir, big, symlinks=True)  # partial mattes travel with the rest
    unmount(mount_point)
    big_output = os.path.join(big, "m.####.exr")
    run = f.run(f.render_args(plates, big_output, "--json", *extra))
    o = f.outcome(name, "render again in a bigger place", run, expect=[0])
    compare_to_reference(o, big_output, reference, matte_frames(os.path.dirname(reference)))
    left = temp_files(big)
    if left:
        o.fail("debris", f"temp files left after the re-run: {left[:4]}")


# --------------------------------------------------------------------------- all

COUNTERS = ("files_touched_outside", "lost_or_partial_mattes", "tracebacks", "hangs",
            "wrong_exit_codes", "signals", "plates_changed", "mattes_differ", "debris",
            "bad_summary", "case_errors")
CASES = ("symlinks", "foreign", "overwrite", "killed", "full_disk")


def run_files(root: str, model: str, timeout: float = 120.0,
              only: Sequence[str] = CASES) -> dict:
    """Run the file-system cases under `root`; the counts and up to 20 failures."""
    started = time.monotonic()
    f = Files(root, model, timeout)
    plates = make_plates(os.path.join(root, "plates"), range(FIRST, FIRST + 6))
    steps = {"symlinks": lambda: case_symlinks(f, plates),
             "foreign": lambda: case_foreign(f, plates),
             "overwrite": lambda: case_overwrite(f),
             "killed": lambda: case_killed(f),
             "full_disk": lambda: case_full_disk(f)}
    for name in only:
        begun = time.monotonic()
        before = len(f.outcomes)
        try:
            steps[name]()
        except Exception as exc:
            f.outcome(name, "(benchmark)").fail("case_errors",
                                                f"crashed: {type(exc).__name__}: {exc}")
        f.notes[f"{name}_seconds"] = round(time.monotonic() - begun, 1)
        f.notes[f"{name}_runs"] = len(f.outcomes) - before
    left = unmount_below(root)
    if left:
        f.notes["left_mounted"] = left
    return summary(f, time.monotonic() - started)


def summary(f: Files, seconds: float) -> dict:
    """Counts by kind, the notes, and up to 20 failures with their stderr."""
    problems = [o for o in f.outcomes if o.problems]
    counts: dict[str, object] = {"cases": f.cases, "runs": len(f.outcomes),
                                 "ok": len(f.outcomes) - len(problems)}
    for kind in COUNTERS:
        counts[kind] = sum(1 for o in f.outcomes if kind in o.kinds)
    counts.update(f.notes)
    counts["seconds"] = round(seconds, 1)
    counts["failures"] = [{"case": o.case, "command": o.command, "exit_code": o.exit_code,
                           "problems": o.problems, "stderr": o.stderr[-600:]}
                          for o in problems[:20]]
    return counts
