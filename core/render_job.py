"""One shot rendered end to end: plates -> colour -> model -> temporal cache -> output mattes.

This is what `vrmbg render` runs in-process (and what a farm task runs). The temporal cache
does the computing; this module decides which chain answers the request (exact, or bounded
pre-roll when asked), writes the requested frames to the output as they finish, refuses to
clobber mattes of another chain, and reports progress and a summary.

Output frames carry `vrmbg:*` attributes: `chain` (settings id), `key` (the frame's chain
key, which covers every earlier plate frame), `exact` (0 for pre-roll approximations),
`model` (weights fingerprint). A re-run skips frames whose output already carries the key
the cache holds for them.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Mapping, TextIO

import numpy as np

from .errors import InputError, OutputError, UsageError
from .cpu import process_threads
from .frames import SequencePattern, format_frame_ranges, parse_frame_spec
from .plate_checks import plate_warnings

MOVIE_OUTPUTS = (".mov",)
DEFAULT_FPS = 24.0


@dataclass
class RenderSummary:
    """What a render did; `to_dict()` is the `--json` summary."""

    frames_requested: int = 0
    frames_computed: int = 0
    frames_from_cache: int = 0
    frames_skipped_existing: int = 0
    seconds_per_computed_frame: float = 0.0
    device: str = ""
    precision: str = ""
    cpu_threads: int = 0  # torch's CPU threads in this render (--threads, else every core)
    model_fingerprint: str = ""
    model_source: str = ""
    chain_id: str = ""
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
    from .engine.cache import RENDER_CACHE_FOLDER, default_cache_root

    if os.environ.get("VRMBG_CACHE"):
        return default_cache_root()
    return os.path.join(os.path.dirname(os.path.abspath(output)), RENDER_CACHE_FOLDER)


def shot_label(plates: Any, layer: str = "", part: str = "") -> str:
    """The shot's name in output stamps: the plate pattern's file name plus layer/part.

    Folder-free on purpose, so a farm node that mounts the plates elsewhere still
    recognises its own outputs.
    """
    from .engine.cache import plate_source

    name = os.path.basename(plate_source(plates))
    return "|".join(x for x in (name, layer, str(part or "")) if x) or name


class RenderJob:
    """Render the requested frames of one shot to an output sequence or movie."""

    def __init__(self, input_path: str, output: str, settings: Mapping[str, Any], *,
                 frames: str = "", resume: bool = True, overwrite: bool = False,
                 movie_start: int = 1001, models: Any = None) -> None:
        from .engine.models import ModelPool

        self.models = models if models is not None else ModelPool()
        self.input_path = input_path
        self.output = output
        self.settings = dict(settings)
        self.frame_spec = frames
        self.resume = resume
        self.overwrite = overwrite
        self.movie_start = movie_start
        self.movie_output = os.path.splitext(output)[1].lower() in MOVIE_OUTPUTS
        self.out_pattern = None if self.movie_output else self._output_pattern(output)
        self.summary = RenderSummary(output=output)

    # ------------------------------------------------------------------ set-up

    @staticmethod
    def _output_pattern(output: str) -> SequencePattern:
        """The output sequence pattern; it must be an EXR with a frame token."""
        if os.path.splitext(output)[1].lower() != ".exr":
            raise UsageError("mattes are written as EXR sequences (name.####.exr) or a .mov movie",
                             path=output)
        pattern = SequencePattern.parse(output)
        if not pattern.is_sequence:
            raise UsageError("the output needs a frame token, e.g. mattes/sh010.####.exr",
                             path=output)
        return pattern

    def _requested_frames(self, plates: Any) -> list[int]:
        """The frames to render: the spec, or every plate frame; all must be on disk."""
        wanted = parse_frame_spec(self.frame_spec) if self.frame_spec else list(plates.frames)
        on_disk = set(plates.frames)
        first = plates.first_frame
        before = [f for f in wanted if f < first]
        if before:
            raise InputError(f"frame {before[0]} is before the shot's first plate frame {first}",
                             path=self.input_path, frame=before[0])
        # The model is temporal: every frame from the shot start to the last one asked for
        # must exist, or the chain would silently jump over a hole.
        needed = range(first, max(wanted) + 1)
        missing = [f for f in needed if f not in on_disk]
        if missing:
            path = plates.path_for(missing[0]) if hasattr(plates, "path_for") else self.input_path
            raise InputError("plate frame missing (a temporal matte needs every frame from the "
                             f"shot start; missing: {format_frame_ranges(missing)})",
                             path=path, frame=missing[0])
        return sorted(set(wanted))

    def _open(self) -> tuple[Any, Any, Any, list[int]]:
        """Plates, colour transform, frame stepper and requested frames (cheap checks first)."""
        from .engine.opening import colour_for, open_plate_source, stepper_for

        plates = open_plate_source(self.input_path, self.settings, movie_start=self.movie_start)
        frames = self._requested_frames(plates)
        colour = colour_for(plates, self.settings)
        self.summary.warnings += plate_warnings(plates, colour.input_space)
        self._check_output_target()
        stepper = stepper_for(self.settings, self.models)
        return plates, colour, stepper, frames

    def _check_output_target(self) -> None:
        """Refuse outputs that would replace the plates or a movie, or cannot be written.

        Nothing is created here: the output folder is made when the first matte is written,
        so a render that fails early leaves nothing behind.
        """
        if os.path.abspath(self.output) == os.path.abspath(self.input_path):
            raise UsageError("the output would replace the plates; choose another -o",
                             path=self.output)
        if self.movie_output and os.path.exists(self.output) and not self.overwrite:
            raise OutputError("the movie exists; pass --overwrite to replace it",
                              path=self.output)
        folder = os.path.dirname(os.path.abspath(self.output))
        while not os.path.isdir(folder):
            parent = os.path.dirname(folder)
            if parent == folder:
                break
            folder = parent
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError("cannot write the output here (permission denied)", path=folder)

    def _session(self, plates: Any, colour: Any, stepper: Any, frames: list[int]) -> Any:
        """The chain answering this request: exact, or bounded pre-roll when asked for and the
        cache cannot continue exactly."""
        from .engine.opening import open_session

        cache_root = self.settings.get("cache_dir") or default_render_cache(self.output)
        settings = {**self.settings, "preview_resolution": 0}
        exact = open_session(plates, settings, cache_root=cache_root, colour=colour,
                             stepper=stepper)
        if not self.resume:
            self._restart_chain(exact.folder)
        preroll = int(self.settings.get("preroll") or 0)
        first = frames[0]
        if preroll <= 0 or first == plates.first_frame:
            return exact
        index = plates.frames.index(first)
        previous = plates.frames[index - 1]
        if previous in set(exact.cached_frames()):
            self.summary.warnings.append(f"frame {previous} is cached: rendering exactly, "
                                         "pre-roll not needed")
            return exact
        approx = open_session(plates, settings, cache_root=cache_root, colour=colour,
                              stepper=stepper, preview=True)
        self.summary.exact = False
        self.summary.warnings.append(
            f"approximate: frames start {preroll} frame(s) before {first} from an empty prior "
            "(--preroll); the output is labelled vrmbg:exact=0")
        return approx

    @staticmethod
    def _restart_chain(folder: str) -> None:
        """`--no-resume`: drop the chain's cached frames so it is computed from the shot start."""
        from .engine.cache import remove_chain

        if os.path.isdir(folder) and not remove_chain(folder):
            raise OutputError("cannot restart the chain: another render is computing it",
                              path=folder)

    # ------------------------------------------------------------------ outputs

    def _out_path(self, frame: int) -> str:
        return self.out_pattern.path_for(frame)

    def _plan_outputs(self, session: Any, frames: list[int]) -> list[int]:
        """Frames whose output must be (re)written; skips finished ones, refuses conflicts.

        An existing output frame is skipped when it is this shot's, of this chain, of the same
        output type, and carries the key the chain has for that frame today. It is rewritten
        when only its key is stale (plates of the shot were updated). Anything else (not a
        vrmbg matte, another shot, other settings) is kept unless --overwrite is given.
        """
        from .engine.cache import read_matte_stamp

        self._cached = set(session.cached_frames())
        expected = session.expected_keys(frames)
        todo: list[int] = []
        for frame in frames:
            path = self._out_path(frame)
            if not os.path.exists(path):
                todo.append(frame)
                continue
            stamp = read_matte_stamp(path) or {}
            same_shot = stamp.get("shot") == self._shot
            ours = same_shot and stamp.get("chain") == session.chain_id
            if same_shot and stamp.get("exact") == 0 and self.summary.exact:
                todo.append(frame)  # this shot's approximate (pre-roll) matte: upgrade it
                continue
            if ours and self.resume and stamp.get("output_type") == self._output_type \
                    and stamp.get("key") == expected.get(frame):
                self.summary.frames_skipped_existing += 1
                continue
            if not ours and not self.overwrite:
                what = ("another shot's matte" if stamp.get("shot") not in (None, self._shot)
                        else "a matte rendered with other settings" if stamp.get("chain")
                        else "a file that is not a vrmbg matte")
                raise OutputError(f"the output holds {what}; pass --overwrite to replace it",
                                  path=path, frame=frame)
            todo.append(frame)
        return todo

    def _write_output(self, session: Any, plates: Any, frame: int,
                      cache_path: str = "") -> None:
        """Copy one finished frame from the cache to the output, with its stamp."""
        from .engine.cache import read_matte_stamp
        from .mattes import read_matte, write_matte

        cache_path = cache_path or session.matte_path(frame)
        alpha = read_matte(cache_path)
        stamp = read_matte_stamp(cache_path) or {}
        rgb = None
        if self.settings.get("output_type") == "rgba":
            plate = plates.read(frame)
            # NaN/Inf in a plate would survive premultiplication (NaN x 0 is NaN).
            rgb, info = np.nan_to_num(plate.rgb, nan=0.0, posinf=0.0, neginf=0.0), plate.info
        else:
            info = plates.info(frame)
        attributes = {"key": stamp.get("key", ""), "start": stamp.get("start", 0),
                      "chain": session.chain_id, "tier": stamp.get("tier", ""),
                      "shot": self._shot, "output_type": self._output_type,
                      "exact": int(stamp.get("tier") == "final"),
                      "model": self.summary.model_fingerprint,
                      "plate": os.path.basename(getattr(plates, "path_for", lambda f: "")(frame)
                                                or self.input_path)}
        write_matte(self._out_path(frame), alpha, like=info, rgb=rgb,
                    compression=self.settings.get("compression", "zip"), attributes=attributes)

    def _write_movie(self, session: Any, plates: Any, colour: Any, frames: list[int]) -> None:
        """Encode the finished frames as one ProRes movie (matte, or composite for rgba)."""
        from .mattes import read_matte
        from .movie import write_movie

        composite = self.settings.get("output_type") == "rgba"

        def images():
            for frame in frames:
                alpha = read_matte(session.matte_path(frame))
                if composite:
                    rgb = colour.to_model(plates.read(frame).rgb)
                    yield rgb * alpha[..., None]
                else:
                    yield alpha

        write_movie(self.output, images(), fps=self._fps(plates),
                    kind="composite" if composite else "matte")

    def _fps(self, plates: Any) -> float:
        """The plate's frame rate (movie rate or EXR/DPX metadata), else 24."""
        rate = getattr(plates, "fps", None)
        if rate:
            return rate
        from .plates import metadata_fps

        try:
            return metadata_fps(plates.info(plates.first_frame).metadata) or DEFAULT_FPS
        except InputError:
            return DEFAULT_FPS

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

            plates, colour, stepper, frames = self._open()
            if stop():
                flag.raise_if_set()
            self._describe_run(plates, stepper, frames)
            session = self._session(plates, colour, stepper, frames)
            self.summary.chain_id = session.chain_id
            self.summary.cache_folder = session.folder
            todo = frames if self.movie_output else self._plan_outputs(session, frames)
            for warning in self.summary.warnings:
                print(f"vrmbg: {warning}", file=sys.stderr)
            self._render(session, plates, colour, frames, todo, stop, flag,
                         progress_mode, progress_stream)
        return self.summary.to_dict()

    def _describe_run(self, plates: Any, stepper: Any, frames: list[int]) -> None:
        """Fill the facts of the summary known before rendering."""
        loaded = stepper.loaded
        self.summary.device = loaded.device.type
        self.summary.precision = str(loaded.dtype).replace("torch.", "")
        self.summary.cpu_threads = process_threads()
        self.summary.model_fingerprint = loaded.fingerprint
        self.summary.model_source = loaded.source
        self.summary.frames = format_frame_ranges(frames)
        self.summary.frames_requested = len(frames)
        self._shot = shot_label(plates, self.settings.get("layer", ""),
                                self.settings.get("part", ""))
        self._output_type = self.settings.get("output_type", "alpha")

    def _render(self, session: Any, plates: Any, colour: Any, frames: list[int],
                todo: list[int], stop: Any, flag: Any, progress_mode: str,
                progress_stream: TextIO | None) -> None:
        """Write cached frames' outputs, compute the rest in order, then the movie if any."""
        from .progress import Progress

        cached = [f for f in todo if f in self._cached] if not self.movie_output else []
        to_compute = [f for f in todo if f not in set(cached)]
        wanted = set(to_compute)
        written: set[int] = set()
        with Progress(len(todo), label=os.path.basename(self.output), mode=progress_mode,
                      stream=progress_stream) as bar:
            for frame in cached:  # finished in the cache: only the output is missing
                if stop():
                    flag.raise_if_set()
                self._write_output(session, plates, frame)
                written.add(frame)
                bar.update(len(written), f"frame {frame} (from cache)")

            # Output frames are written by their own thread so the model never waits for
            # an EXR encode; every submitted write is finished (or has failed) before leaving.
            writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vrmbg-output")
            pending: list[Future] = []

            def finished(done: int, total: int, frame: int) -> None:
                # Lead-in frames before the first one asked for count in the progress too,
                # so a farm never sees a task stalled at 0%.
                bar.total = len(cached) + total
                if frame in wanted and not self.movie_output:
                    pending.append(writer.submit(self._write_output, session, plates, frame))
                    written.add(frame)
                bar.update(len(cached) + done, f"frame {frame}")

            bad_pixels: dict[int, int] = {}
            try:
                result = (session.ensure_frames(to_compute, progress=finished, cancel=stop)
                          if to_compute else None)
                answers = result.paths if result else {}
                bad_pixels = result.bad_pixels if result else {}
            finally:
                writer.shutdown(wait=True)
                for job in pending:
                    job.result()  # a failed output write is reported over a cancel
            for frame in to_compute:  # answered from the cache (another process, final tier)
                if frame not in written and not self.movie_output:
                    self._write_output(session, plates, frame, answers.get(frame, ""))
                    written.add(frame)
            if self.movie_output:
                bar.total += 1
                self._write_movie(session, plates, colour, todo)
            if bar.done < bar.total:
                bar.update(bar.total, f"{len(frames)} frame(s) done")
        self._warn_bad_pixels(bad_pixels)
        counters = session.counters
        self.summary.frames_computed = counters.frames_computed
        self.summary.frames_from_cache = len(cached) + counters.frames_from_cache
        self.summary.seconds_per_computed_frame = round(counters.seconds_per_computed_frame, 4)

    def _warn_bad_pixels(self, bad_pixels: Mapping[int, int]) -> None:
        """Say which frames had NaN/Inf pixels (set to 0 before the model saw them)."""
        for frame, count in sorted(bad_pixels.items()):
            if count:
                warning = f"frame {frame}: {count} NaN/Inf pixel(s) set to 0 before inference"
                self.summary.warnings.append(warning)
                print(f"vrmbg: warning: {warning}", file=sys.stderr)
