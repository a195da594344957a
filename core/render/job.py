"""One shot rendered end to end: plates -> colour -> model -> temporal cache -> output mattes.

This is what `vrmbg render` runs in-process (and what a farm task runs). The temporal cache
does the computing; this module decides which chain answers the request (exact, or bounded
pre-roll when asked), plans the outputs (`output_plan`: a pure decision from the stamps on
disk), writes the requested frames as they finish (`output_writer`), and reports progress and
a summary.

Output frames carry `vrmbg:*` attributes: `shot`, `plate_id`, `layer`, `part`, `shot_start`
(which shot: the content identity of the shot's first plate frame), `chain` and `identity`
(the settings), `key` (the frame's chain key, which covers every earlier plate frame),
`exact` (0 for pre-roll approximations), `model` (weights fingerprint). A re-run skips frames
whose output already carries the key the chain has for them today and rewrites those whose
key is stale (a plate frame at or before them changed).
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, TextIO

from ..cpu import process_threads
from ..errors import InputError, OutputError, UsageError
from ..io.frames import SequencePattern, format_frame_ranges, parse_frame_spec
from .output_plan import OutputPlan, ShotOutputs, conflict_message, plan_outputs
from ..io.plate_checks import plate_warnings

MOVIE_OUTPUTS = (".mov",)


@dataclass
class RenderSummary:
    """What a render did; `to_dict()` is the `--json` summary (also on failure)."""

    frames_requested: int = 0
    frames_computed: int = 0
    frames_from_cache: int = 0
    frames_skipped_existing: int = 0
    frames_written: str = ""  # output frames written by this render (frame spec)
    frames_rewritten: str = ""  # of those, the ones that replaced an existing output frame
    cuts: list[int] = field(default_factory=list)  # edit cuts given or detected in the shot
    stale_outputs: str = ""  # output frames outside the request left from older plates
    seconds_per_computed_frame: float = 0.0
    device: str = ""
    precision: str = ""
    cpu_threads: int = 0  # torch's CPU threads in this render (--threads, else every core)
    model_fingerprint: str = ""
    model_source: str = ""
    chain_id: str = ""
    shot: str = ""
    shot_start: int | None = None
    exact: bool = True
    output: str = ""
    cache_folder: str = ""
    frames: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly copy."""
        return dict(self.__dict__)


def default_render_cache(output: str) -> str:
    """$VRMBG_CACHE, else a `.vrmbg-cache` folder beside the output.

    Beside the output (usually shared storage) lets every farm chunk of a shot, on any
    machine, continue from frames another chunk finished.
    """
    from ..engine.cache import RENDER_CACHE_FOLDER, default_cache_root

    if os.environ.get("VRMBG_CACHE"):
        return default_cache_root()
    return os.path.join(os.path.dirname(os.path.abspath(output)), RENDER_CACHE_FOLDER)


def shot_label(plates: Any, layer: str = "", part: str = "") -> str:
    """The shot's readable name in output stamps: the plate file name (canonical `#` token)
    plus layer and part. Which shot a matte belongs to is decided by `plate_id`, not this."""
    from ..engine.cache import plate_source

    name = os.path.basename(plate_source(plates))
    return "|".join(x for x in (name, layer, str(part or "")) if x) or name


def output_pattern(output: str) -> SequencePattern:
    """The output sequence pattern; it must be an EXR with a frame token."""
    if os.path.splitext(output)[1].lower() != ".exr":
        raise UsageError("mattes are written as EXR sequences (name.####.exr) or a .mov movie",
                         path=output)
    pattern = SequencePattern.parse(output)
    if not pattern.is_sequence:
        raise UsageError("the output needs a frame token, e.g. mattes/sh010.####.exr",
                         path=output)
    return pattern


def requested_frames(spec: str, shot: list[int], on_disk: list[int], source: str,
                     path_for: Callable[[int], str] | None, preroll: int = 0,
                     over_gaps: bool = False) -> list[int]:
    """The frames to render: the spec, or every frame of the shot; all must be plates.

    The model is temporal: every frame from the shot start (or, with a pre-roll, from that
    many frames before the first one asked for) to the last one asked for must exist, or the
    chain would silently jump over a hole; `over_gaps` is the explicit choice to chain over
    the frames present (then only the frames asked for must exist).
    """
    wanted = parse_frame_spec(spec) if spec else list(shot)
    first = shot[0]
    before = [f for f in wanted if f < first]
    if before:
        raise InputError(f"frame {before[0]} is before the shot's first frame {first}",
                         path=source, frame=before[0])
    present = set(on_disk)
    reads_from = max(first, min(wanted) - preroll) if preroll > 0 else first
    needed = wanted if over_gaps else range(reads_from, max(wanted) + 1)
    missing = [f for f in needed if f not in present]
    if missing and over_gaps:
        path = path_for(missing[0]) if path_for is not None else source
        raise InputError(f"no plate frame {format_frame_ranges(missing)} (with "
                         "--chain-over-gaps only the frames asked for must exist)",
                         path=path, frame=missing[0])
    if missing:
        path = path_for(missing[0]) if path_for is not None else source
        raise InputError("plate frame missing (a temporal matte needs every frame from the "
                         f"shot start; missing: {format_frame_ranges(missing)})",
                         path=path, frame=missing[0],
                         hint="plates on twos? --chain-over-gaps chains over the frames "
                              "present")
    return sorted(set(wanted))


@dataclass(frozen=True)
class _Opened:
    """The shot as opened: plates, colour, stepper, the shot's frames and those asked for."""

    plates: Any
    colour: Any
    stepper: Any
    shot_frames: list[int]
    frames: list[int]


class RenderJob:
    """Render the requested frames of one shot to an output sequence or movie.

    Everything the job needs is given here; `run()` may be called once. `summary` holds what
    is known so far, so a caller can report it when `run()` fails or is cancelled.
    """

    def __init__(self, input_path: str, output: str, settings: Mapping[str, Any], *,
                 frames: str = "", resume: bool = True, overwrite: bool = False,
                 movie_start: int = 1001, models: Any = None,
                 log: TextIO | None = None) -> None:
        from ..engine.models import ModelPool

        self.models = models if models is not None else ModelPool()
        self.input_path = input_path
        self.output = output
        self.settings = dict(settings)
        self.frame_spec = frames
        self.resume = resume
        self.overwrite = overwrite
        self.movie_start = movie_start
        self.movie_output = os.path.splitext(output)[1].lower() in MOVIE_OUTPUTS
        self.out_pattern = None if self.movie_output else output_pattern(output)
        self.output_type = str(self.settings.get("output_type") or "alpha")
        self.log = log if log is not None else sys.stderr
        self.summary = RenderSummary(output=output)

    def say(self, text: str) -> None:
        """One log line for the artist or the farm log."""
        print(f"vrmbg: {text}", file=self.log, flush=True)

    def warn(self, text: str) -> None:
        """A warning: logged now and kept in the summary."""
        self.summary.warnings.append(text)
        self.say(f"warning: {text}")

    # ------------------------------------------------------------------ set-up

    def _open(self) -> _Opened:
        """Plates, colour transform, frame stepper and requested frames (cheap checks first)."""
        from ..engine.chain import shot_frames
        from ..engine.opening import colour_for, open_plate_source, stepper_for

        plates = open_plate_source(self.input_path, self.settings, movie_start=self.movie_start)
        try:
            shot = shot_frames(plates.frames, self.settings.get("shot_start"))
        except InputError as exc:
            raise InputError(exc.message, path=self.input_path, frame=exc.frame) from None
        frames = requested_frames(self.frame_spec, shot, list(plates.frames), self.input_path,
                                  getattr(plates, "path_for", None),
                                  int(self.settings.get("preroll") or 0),
                                  bool(self.settings.get("chain_over_gaps")))
        colour = colour_for(plates, self.settings)
        for warning in plate_warnings(plates, colour.input_space):
            self.warn(warning)
        if self.output_type == "rgba":
            colour.scene_linear_space  # a config without scene_linear fails before the model
        self._check_output_target(plates, shot[0])
        stepper = stepper_for(self.settings, self.models)
        return _Opened(plates, colour, stepper, shot, frames)

    def _check_output_target(self, plates: Any, start: int) -> None:
        """Refuse outputs that would replace the plates or another movie, or cannot be
        written. A matte movie this shot's render wrote is rewritten (a farm retry succeeds).

        Nothing is created here: the output folder is made when the first matte is written,
        so a render that fails early leaves nothing behind.
        """
        if os.path.abspath(self.output) == os.path.abspath(self.input_path):
            raise UsageError("the output would replace the plates; choose another -o",
                             path=self.output)
        if self.movie_output and os.path.exists(self.output) and not self.overwrite \
                and not self._our_movie(plates, start):
            raise OutputError("the movie exists and is not a matte movie of these plates; "
                              "pass --overwrite to replace it", path=self.output)
        folder = os.path.dirname(os.path.abspath(self.output))
        while not os.path.isdir(folder):
            parent = os.path.dirname(folder)
            if parent == folder:
                break
            folder = parent
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError("cannot write the output here (permission denied)", path=folder)

    def _our_movie(self, plates: Any, start: int) -> bool:
        """True when the output movie was written by vrmbg from these plates' shot."""
        from ..engine.cache import plate_content_id, plate_part
        from .output_writer import movie_stamp

        stamp = movie_stamp(self.output)
        return bool(stamp) and stamp.get("plate_id") == plate_content_id(plates, start) \
            and stamp.get("shot_start") == start and stamp.get("part", "") == plate_part(plates)

    def _session(self, opened: _Opened) -> Any:
        """The chain answering this request: exact, or bounded pre-roll when asked for and the
        cache cannot continue exactly."""
        from ..engine.opening import open_session

        cache_root = self.settings.get("cache_dir") or default_render_cache(self.output)
        settings = {**self.settings, "preview_resolution": 0}
        exact = open_session(opened.plates, settings, cache_root=cache_root,
                             colour=opened.colour, stepper=opened.stepper)
        if not self.resume:
            _restart_chain(exact.folder)
        preroll = int(self.settings.get("preroll") or 0)
        first = opened.frames[0]
        index = opened.shot_frames.index(first)
        if preroll <= 0 or not getattr(opened.stepper, "temporal", True):
            return exact  # a per-frame model is exact whatever frame it starts at
        if index - preroll <= 0:  # a pre-roll from the shot start is the exact chain
            if index:
                self.warn(f"the pre-roll reaches the shot start {opened.shot_frames[0]}: "
                          "rendering exactly")
            return exact
        if exact.frames.start_for(first, preroll) == exact.frames.segment_start(first):
            self.warn(f"the pre-roll reaches the cut at {exact.frames.segment_start(first)}: "
                      "rendering exactly")
            return exact
        previous = opened.shot_frames[index - 1]
        if previous in set(exact.cached_frames()):
            self.warn(f"frame {previous} is cached: rendering exactly, pre-roll not needed")
            return exact
        approx = open_session(opened.plates, settings, cache_root=cache_root,
                              colour=opened.colour, stepper=opened.stepper, preview=True)
        self.summary.exact = False
        self.warn(f"approximate: frames start {preroll} frame(s) before {first} from an empty "
                  "prior (--preroll); the output is labelled vrmbg:exact=0")
        return approx

    def _shot_outputs(self, opened: _Opened, session: Any) -> ShotOutputs:
        """What this render's outputs are stamped with."""
        from ..engine.cache import plate_content_id

        start = opened.shot_frames[0]
        return ShotOutputs(
            label=shot_label(opened.plates, session.layer, session.part),
            plate_id=plate_content_id(opened.plates, start), layer=session.layer,
            part=session.part, start=start, chain_id=session.chain_id,
            identity=session.identity, output_type=self.output_type,
            exact=session.tier == "final")

    # ------------------------------------------------------------------ outputs

    def _plan(self, opened: _Opened, session: Any, shot: ShotOutputs) -> OutputPlan:
        """Read the stamps of the output frames on disk and plan the outputs; refuse
        conflicts (OutputError naming the frames and what they hold)."""
        from ..engine.cache import plate_content_id, read_matte_stamp

        assert self.out_pattern is not None
        existing = {f: read_matte_stamp(self.out_pattern.path_for(f))
                    for f in self.out_pattern.discover()}
        in_shot = set(opened.shot_frames)
        checked = set(opened.frames) | ({f for f in existing if f in in_shot}
                                        if shot.exact else set())
        expected = session.expected_keys(sorted(checked))
        starts = {s.get("shot_start") for s in existing.values() if s}
        plate_ids = {start: plate_content_id(opened.plates, start)
                     for start in starts if isinstance(start, int) and start in in_shot}
        plate_ids[shot.start] = shot.plate_id
        plan = plan_outputs(opened.frames, existing, expected, shot, plate_ids,
                            resume=self.resume, overwrite=self.overwrite)
        if plan.conflicts:
            first = min(c.frame for c in plan.conflicts)
            raise OutputError(conflict_message(plan.conflicts, shot),
                              path=self.out_pattern.path_for(first))
        return plan

    # ------------------------------------------------------------------ running

    def run(self, *, progress_mode: str = "auto", progress_stream: TextIO | None = None,
            cancel: Any = None) -> dict[str, Any]:
        """Render; returns the summary. Cancelled (exit 130) keeps every finished frame.

        SIGINT/SIGTERM are caught from the start (model loading included): the frame in
        flight finishes, every finished frame is kept, and Cancelled is raised.
        """
        from .progress import CancelFlag

        with CancelFlag() as flag:
            def stop() -> bool:
                return flag.is_set() or bool(cancel is not None and cancel())

            opened = self._open()
            if stop():
                flag.raise_if_set()
            self._describe_run(opened)
            session = self._session(opened)
            shot = self._shot_outputs(opened, session)
            self.summary.chain_id = session.chain_id
            self.summary.cache_folder = session.folder
            self.summary.shot = shot.label
            self._header(opened, session)
            if self.movie_output:
                todo, plan = list(opened.frames), None
            else:
                plan = self._plan(opened, session, shot)
                todo = list(plan.todo)
                self.summary.frames_skipped_existing = len(plan.skipped)
                self.summary.stale_outputs = format_frame_ranges(plan.stale)
                for line in plan.warnings(shot):
                    self.warn(line)
            self._render(opened, session, shot, todo, plan, stop, flag, progress_mode,
                         progress_stream)
        return self.summary.to_dict()

    def _describe_run(self, opened: _Opened) -> None:
        """Fill the facts of the summary known before rendering."""
        loaded = opened.stepper.loaded
        self.summary.device = loaded.device.type
        self.summary.precision = str(loaded.dtype).replace("torch.", "")
        self.summary.cpu_threads = process_threads()
        self.summary.model_fingerprint = loaded.fingerprint
        self.summary.model_source = loaded.source
        self.summary.frames = format_frame_ranges(opened.frames)
        self.summary.frames_requested = len(opened.frames)
        self.summary.shot_start = opened.shot_frames[0]

    def _header(self, opened: _Opened, session: Any) -> None:
        """What this render is about to do, for the farm log (one line per fact)."""
        from ..engine.cache import plate_source

        stepper, colour = opened.stepper, opened.colour
        size = opened.plates.info(opened.frames[0])
        lines = [
            f"plates {plate_source(opened.plates)} (shot {opened.shot_frames[0]}-"
            f"{opened.shot_frames[-1]}), frames {self.summary.frames} -> {self.output}",
            f"colour {colour.describe()} (config {colour.config.getName() or '-'}"
            f"{_colour_path(session)})",
            f"model {stepper.loaded.source} (fingerprint {stepper.loaded.fingerprint[:16]}), "
            f"{stepper.resolution}x{stepper.resolution} from {size.width}x{size.height}",
            f"device {self.summary.device}, precision {self.summary.precision}, "
            f"{self.summary.cpu_threads} CPU thread(s)",
            f"chain {session.chain_id} ({'exact' if session.tier == 'final' else 'approximate'}"
            f"), cache {session.folder}",
        ]
        for line in lines:
            self.say(line)

    def _lead_in(self, opened: _Opened, session: Any, to_compute: list[int]) -> None:
        """Say when frames before the first requested one are computed first."""
        if not to_compute or session.tier != "final":
            return
        shot = opened.shot_frames
        first = to_compute[0]
        cached = {f for f in session.cached_frames() if f < first}
        before = [f for f in shot if f < first]
        resume_at = max(cached, default=None)
        lead = [f for f in before if resume_at is None or f > resume_at]
        if lead:
            self.say(f"computing {format_frame_ranges(lead)} first: temporal lead-in "
                     f"(frame {first} continues from them)")

    def _say_if_locked(self, session: Any, to_compute: list[int]) -> None:
        """Say so when another render holds this chain's lock (this one waits for it and
        takes whatever frames the other one finishes)."""
        from ..engine.cache import is_locked

        if to_compute and is_locked(session.folder):
            self.say(f"waiting for another render's lock on chain {session.chain_id} "
                     f"({session.folder}); its finished frames are used as they appear")

    def _render(self, opened: _Opened, session: Any, shot: ShotOutputs, todo: list[int],
                plan: OutputPlan | None, stop: Any, flag: Any, progress_mode: str,
                progress_stream: TextIO | None) -> None:
        """Write cached frames' outputs, compute the rest in order, then the movie if any."""
        from ..engine.cache import touch_chain
        from .output_writer import MatteWriter, OutputSink, write_movie_output
        from .progress import Progress

        writer = None
        if not self.movie_output:
            assert self.out_pattern is not None
            writer = MatteWriter(self.out_pattern, opened.plates, opened.colour,
                                 {**shot.stamp(), "model": self.summary.model_fingerprint},
                                 output_type=self.output_type,
                                 compression=str(self.settings.get("compression") or "zip"),
                                 previous=_after_gaps(opened.shot_frames))
            gaps = _after_gaps([f for f in opened.shot_frames if f <= opened.frames[-1]])
            if gaps:
                self.warn("chaining over missing plate frames: " + ", ".join(
                    f"{frame} continues from {before}" for frame, before in
                    sorted(gaps.items())[:5]) + ("..." if len(gaps) > 5 else ""))
        valid = set(session.cached_frames()) if writer is not None else set()
        cached = [f for f in todo if f in valid]
        to_compute = [f for f in todo if f not in valid]
        wanted = set(to_compute)
        written: list[int] = []
        self._lead_in(opened, session, to_compute)
        with Progress(len(todo), label=os.path.basename(self.output), mode=progress_mode,
                      stream=progress_stream) as bar:
            for frame in cached:  # finished in the cache: only the output is missing
                if stop():
                    flag.raise_if_set()
                writer.write(frame, session.matte_path(frame))
                written.append(frame)
                bar.update(len(written), f"frame {frame} (from cache)")
            if cached:
                touch_chain(session.folder)  # reading the cache is use (`cache prune`)

            # Computed frames' outputs come from the engine's mattes in memory (the sink): an
            # alpha output as the engine writes its matte, others on their own thread so the
            # model never waits for them; every queued write is finished before leaving.
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vrmbg-output")
            last = [time.perf_counter()]
            sink = OutputSink(writer, wanted, pool) if writer is not None else None

            def finished(done: int, total: int, frame: int) -> None:
                # Lead-in frames before the first one asked for count in the progress too,
                # so a farm never sees a task stalled at 0%.
                bar.total = len(cached) + total
                if frame in wanted and writer is not None:
                    written.append(frame)  # by the sink, before the frame became valid
                now = time.perf_counter()
                took, last[0] = now - last[0], now
                bar.update(len(cached) + done, f"frame {frame} ({took:.2f} s)")

            self._say_if_locked(session, to_compute)
            bad_pixels: dict[int, int] = {}
            try:
                result = (session.ensure_frames(to_compute, progress=finished, cancel=stop,
                                                sink=sink)
                          if to_compute else None)
                answers = result.paths if result else {}
                bad_pixels = result.bad_pixels if result else {}
            finally:
                pool.shutdown(wait=True)
                failed = sink.failures() if sink is not None else {}
                written[:] = [frame for frame in written if frame not in failed]
                self._count(session, cached, written, plan)
                if failed:  # a failed output write is reported over a cancel
                    raise failed[min(failed)]
            for frame in to_compute:  # answered from the cache (another process, final tier)
                if frame not in written and writer is not None:
                    writer.write(frame, answers.get(frame) or session.matte_path(frame))
                    written.append(frame)
            if self.movie_output:
                bar.total += 1
                write_movie_output(self.output, todo, session.matte_path, opened.plates,
                                   opened.colour, composite=self.output_type == "rgba",
                                   stamp=shot.stamp())
            if bar.done < bar.total:
                bar.update(bar.total, f"{len(opened.frames)} frame(s) done")
        self._count(session, cached, written, plan)
        self._warn_bad_pixels(bad_pixels)

    def _count(self, session: Any, cached: list[int], written: list[int],
               plan: OutputPlan | None) -> None:
        """Counters and written frames into the summary (also after a failure)."""
        counters = session.counters
        self.summary.cuts = session.known_cuts()
        self.summary.frames_computed = counters.frames_computed
        self.summary.frames_from_cache = len(cached) + counters.frames_from_cache
        self.summary.seconds_per_computed_frame = round(counters.seconds_per_computed_frame, 4)
        self.summary.frames_written = format_frame_ranges(written)
        if plan is not None:
            replaced = set(plan.replaced)
            self.summary.frames_rewritten = format_frame_ranges(
                f for f in written if f in replaced)

    def _warn_bad_pixels(self, bad_pixels: Mapping[int, int]) -> None:
        """Say which frames had NaN/Inf pixels (set to 0 before the model saw them)."""
        for frame, count in sorted(bad_pixels.items()):
            if count:
                self.warn(f"frame {frame}: {count} NaN/Inf pixel(s) set to 0 before inference")


def _after_gaps(frames: list[int]) -> dict[int, int]:
    """frame -> the frame it continues from, for each shot frame right after a gap."""
    return {b: a for a, b in zip(frames, frames[1:]) if b - a > 1}


def _restart_chain(folder: str) -> None:
    """`--no-resume`: drop the chain's cached frames so it is computed from the shot start."""
    from ..engine.cache import remove_chain

    if os.path.isdir(folder) and not remove_chain(folder):
        raise OutputError("cannot restart the chain: another render is computing it",
                          path=folder)


def _colour_path(session: Any) -> str:
    """Where the plates are converted, for the render's header, when not by OCIO on the CPU."""
    on_device = getattr(session, "device_colour", None)
    if on_device is None:
        return ""
    plates = "half and float" if on_device.inputs == {"half", "float"} else "half"
    return f"; {plates} plates converted on the {on_device.device.type} by device tables"
