"""Which output frames a render writes, skips or must not touch: a pure decision.

    plan = plan_outputs(requested, existing_stamps, expected_keys, shot, plate_ids,
                        resume=True, overwrite=False)

Nothing here reads or writes a file: the caller reads the `vrmbg:*` stamps of the output
frames on disk (requested or not), the keys today's chain gives each frame, and the content
identity of today's plate frames, and gets back the to-do list, the frames already finished,
the frames it must refuse (and why), and what it should warn about: output frames outside the
request that are stale (an earlier plate frame changed since they were written), not whole
(a write that never finished), or belong to another shot.

A shot's output folder never holds mattes of two of its chains after a render that exits 0:
frames of another chain of the same shot beside the request (other settings, another thread
count or GPU model, or a moved shot start) are `mixed`, and the caller refuses to write
beside them; with `overwrite` they join the to-do list (all of them, or the caller refuses:
`uncovered`, those outside today's shot).

A frame's stamp says which shot it belongs to (`plate_id`, the content identity of the shot's
first plate frame, with `layer` and `part`), where its chain starts (`shot_start`), which
chain (`chain`, the settings) and which state of the plates (`key`, which covers every
earlier plate frame).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..io.frames import format_frame_ranges

# How an existing output frame relates to this render.
OURS = "ours"  # this shot, this chain
APPROX_OURS = "approximate"  # this shot, a --preroll approximation
START_CHANGED = "shot_start"  # this shot's pictures, but its chain starts elsewhere
OTHER_SETTINGS = "other_settings"  # this shot, another chain
OTHER_SHOT = "other_shot"  # other pictures (another plate or plate version)
NOT_VRMBG = "not_vrmbg"  # no vrmbg stamp at all


@dataclass(frozen=True)
class ShotOutputs:
    """What this render's output frames carry: the shot, its chain and the output kind."""

    label: str  # readable shot name: plate file name plus layer/part
    plate_id: str  # content identity of the plate frame at the shot start
    layer: str
    part: str
    start: int  # the shot's first frame (where the chain starts)
    chain_id: str
    identity: Mapping[str, Any]  # the chain's settings, to name what differs
    output_type: str
    exact: bool

    def stamp(self) -> dict[str, Any]:
        """The `vrmbg:*` attributes shared by every output frame of this render."""
        return {"shot": self.label, "plate_id": self.plate_id, "layer": self.layer,
                "part": self.part, "shot_start": self.start, "chain": self.chain_id,
                "identity": json.dumps(dict(self.identity), sort_keys=True,
                                       separators=(",", ":"), default=str),
                "output_type": self.output_type}


@dataclass(frozen=True)
class Conflict:
    """An output frame this render may not replace without --overwrite, and why."""

    frame: int
    kind: str
    detail: str = ""
    host: str = ""  # where the other chain ran (device / threads / GPU), when its stamp says


@dataclass(frozen=True)
class OutputPlan:
    """The outcome of `plan_outputs`."""

    todo: tuple[int, ...]  # frames to write, in order
    skipped: tuple[int, ...]  # finished already (this chain, today's key)
    replaced: tuple[int, ...]  # frames of `todo` that exist and will be rewritten
    conflicts: tuple[Conflict, ...]  # requested frames refused (empty with overwrite)
    stale: tuple[int, ...]  # not requested, this chain, but earlier plates changed since
    foreign: tuple[Conflict, ...]  # not requested, of another chain or shot (left as they are)
    mixed: tuple[Conflict, ...] = ()  # not requested, another chain of this shot: refuse
    uncovered: tuple[Conflict, ...] = ()  # as `mixed`, to overwrite, but not a shot frame
    incomplete: tuple[int, ...] = ()  # not requested, this shot's, but the file is not whole

    def warnings(self, shot: ShotOutputs) -> list[str]:
        """What a user must hear about the output folder after this render."""
        lines = []
        if self.stale:
            spec = format_frame_ranges(self.stale)
            lines.append(f"output frames {spec} are stale: plate frames before them changed "
                         f"since they were rendered; re-render them with --frames {spec}")
        if self.incomplete:
            spec = format_frame_ranges(self.incomplete)
            lines.append(f"output frames {spec} are not whole (a write that never finished); "
                         f"re-render them with --frames {spec}")
        for kind, frames, detail in _grouped(self.foreign):
            lines.append(f"output frames {format_frame_ranges(frames)} are not of this chain "
                         f"({describe(kind, detail, shot)}): the output folder mixes chains")
        return lines


def relation(stamp: Mapping[str, Any] | None, shot: ShotOutputs,
             plate_ids: Mapping[int, str]) -> tuple[str, str]:
    """How an output frame's stamp relates to this render: (kind, detail).

    `plate_ids` maps frame -> content identity of today's plate frame, for at least every
    `shot_start` the stamps name that is a plate frame today.
    """
    if not stamp or not stamp.get("chain"):
        return NOT_VRMBG, ""
    if not stamp.get("plate_id"):
        return OTHER_SHOT, "written by an older vrmbg, without a plate identity"
    start = stamp.get("shot_start")
    same_pictures = (isinstance(start, int) and plate_ids.get(start) == stamp.get("plate_id")
                     and str(stamp.get("layer", "")) == shot.layer
                     and str(stamp.get("part", "")) == shot.part)
    if not same_pictures:
        return OTHER_SHOT, str(stamp.get("shot") or "")
    if start != shot.start:
        return START_CHANGED, str(start)
    if stamp.get("chain") == shot.chain_id:
        return OURS, ""
    if stamp.get("exact") == 0:
        return APPROX_OURS, ""
    return OTHER_SETTINGS, ", ".join(differences(_identity(stamp), shot.identity))


# Existing frames that are this shot's, but of another of its chains: never left beside
# this render's frames (refused, or rewritten with --overwrite).
OTHER_CHAINS = (START_CHANGED, OTHER_SETTINGS)


def plan_outputs(requested: Iterable[int], existing: Mapping[int, Mapping[str, Any] | None],
                 expected: Mapping[int, str], shot: ShotOutputs, plate_ids: Mapping[int, str],
                 *, resume: bool = True, overwrite: bool = False,
                 shot_frames: Iterable[int] | None = None,
                 not_whole: Iterable[int] = ()) -> OutputPlan:
    """Decide every requested frame, and check the output frames outside the request.

    `existing`: frame -> stamp of each output frame on disk (None or {} when it has none);
    `expected`: frame -> today's key of this chain (frames outside the shot left out);
    `not_whole`: existing frames whose file is not whole (a write that never finished);
    `shot_frames`: the frames this render can write (None: any).
    A requested frame is skipped when it is this chain's, of the same output type, carries
    today's key and its file is whole (unless `resume` is off); it is rewritten when it is
    this chain's otherwise, when it is this shot's approximation and this render is exact, or
    with `overwrite`; anything else is a conflict. Frames outside the request of another
    chain of this shot are `mixed`; with `overwrite` they are rewritten too (`uncovered` when
    they are not frames this render can write).
    """
    wanted = sorted(set(int(f) for f in requested))
    cut = set(not_whole)
    todo, skipped, replaced, conflicts = [], [], [], []
    for frame in wanted:
        if frame not in existing:
            todo.append(frame)
            continue
        stamp = existing[frame] or {}
        kind, detail = relation(stamp, shot, plate_ids)
        finished = (kind == OURS and resume and stamp.get("output_type") == shot.output_type
                    and stamp.get("key") == expected.get(frame) and frame not in cut)
        if finished:
            skipped.append(frame)
        elif kind == OURS or (kind == APPROX_OURS and shot.exact) or overwrite:
            todo.append(frame)
            replaced.append(frame)
        else:
            conflicts.append(Conflict(frame, kind, detail, _host_of(stamp)))
    stale, foreign, mixed, uncovered, incomplete = [], [], [], [], []
    asked = set(wanted)
    writable = None if shot_frames is None else set(shot_frames)
    for frame in sorted(f for f in existing if f not in asked):
        stamp = existing[frame] or {}
        kind, detail = relation(stamp, shot, plate_ids)
        if frame in cut and kind in (OURS, APPROX_OURS):
            incomplete.append(frame)
        if kind == OURS and shot.exact and stamp.get("key") != expected.get(frame):
            stale.append(frame)
        elif kind in (START_CHANGED, OTHER_SETTINGS, OTHER_SHOT):
            conflict = Conflict(frame, kind, detail, _host_of(stamp))
            if kind not in OTHER_CHAINS or _exact_beside_preroll(stamp, shot):
                foreign.append(conflict)  # said, and left as it is
            elif overwrite and (writable is None or frame in writable):
                todo.append(frame)
                replaced.append(frame)
            else:
                foreign.append(conflict)
                (uncovered if overwrite else mixed).append(conflict)
    return OutputPlan(tuple(sorted(todo)), tuple(skipped), tuple(sorted(replaced)),
                      tuple(conflicts), tuple(stale), tuple(foreign), tuple(mixed),
                      tuple(uncovered), tuple(incomplete))


def conflict_message(conflicts: Iterable[Conflict], shot: ShotOutputs) -> str:
    """One line for the refused frames: what they hold and how to go on."""
    groups = _grouped(conflicts)
    kind, frames, detail = groups[0]
    where = f"frame {frames[0]}" if len(frames) == 1 else f"frames {format_frame_ranges(frames)}"
    if kind == START_CHANGED:
        return (f"the shot's first frame changed: the mattes in output {where} continue a "
                f"chain that starts at {detail}, but the plates now start at {shot.start} "
                f"(frames added before the shot?); pass --shot-start {detail} to keep "
                f"them, or --overwrite to render the shot from {shot.start}")
    return f"output {where} holds {describe(kind, detail, shot)}; pass --overwrite to replace it"


def _exact_beside_preroll(stamp: Mapping[str, Any], shot: ShotOutputs) -> bool:
    """True for an exact output frame of this shot's settings beside this --preroll
    (approximate) render: the exact chain and its pre-roll approximations share a folder by
    design (each frame says which it is, `vrmbg:exact`)."""
    if shot.exact or stamp.get("exact") == 0:
        return False
    differ = {text.split(":", 1)[0] for text in differences(_identity(stamp), shot.identity)}
    return bool(differ) and differ <= {"tier", "preroll"}


def mixing_message(mixed: Iterable[Conflict], shot: ShotOutputs,
                   requested: Iterable[int]) -> str:
    """One line for output frames of another chain of this shot found beside the request:
    which, where that chain ran and where this one runs, and how to go on."""
    mixed = list(mixed)
    groups = _grouped(mixed)
    kind, frames, detail = groups[0]
    every = sorted(frame for _, group, _ in groups for frame in group)
    first = frames[0]
    asked = format_frame_ranges(sorted(set(requested)))
    where = (f"output frame {first}" if len(every) == 1 else
             f"output frame {first} (of {format_frame_ranges(every)})")
    if kind == START_CHANGED:
        return (f"{where} continues a chain that starts at frame {detail}, but the plates "
                f"now start at {shot.start}: frames {asked} beside it would mix two chains of "
                f"this shot in one output folder; pass --shot-start {detail} to continue it, "
                f"or --overwrite to render all of them again from {shot.start}")
    host = next((c.host for c in mixed if c.frame == first), "")
    ours = host_text(shot.identity)
    said = any(detail.startswith(f"{name}: ") or f", {name}: " in detail
               for name in ("compute", "device"))  # the differences name both already
    ran = (f"; rendered on {host}, this render runs on {ours}"
           if host and ours and not said else "")
    return (f"{where} holds a matte of another chain of this shot ({detail or 'other settings'}"
            f"{ran}): frames {asked} beside it would mix two chains in one output folder; a "
            "retry on a host like the one that made them may succeed, or pass --overwrite to "
            "render all of them again with this chain")


def uncovered_message(uncovered: Iterable[Conflict], shot: ShotOutputs) -> str:
    """One line for frames of another chain of this shot that --overwrite cannot rewrite."""
    frames = format_frame_ranges(sorted(c.frame for c in uncovered))
    return (f"output frames {frames} hold mattes of another chain of this shot, and are not "
            f"frames of today's shot (from {shot.start}), so --overwrite cannot render them "
            "again with this chain; move or delete them, or render into another folder")


def host_text(identity: Mapping[str, Any]) -> str:
    """Where a chain ran, from its identity: the device and what it computes with (CPU
    threads and instruction set, or the GPU model); "" when the identity does not say."""
    device = str(identity.get("device") or "")
    compute = str(identity.get("compute") or "")
    if compute and device and not compute.startswith(device):
        return f"{device} {compute}"
    return compute or device


def _host_of(stamp: Mapping[str, Any]) -> str:
    """Where the chain of an output frame's stamp ran ("" when it does not say)."""
    return host_text(_identity(stamp))


def describe(kind: str, detail: str, shot: ShotOutputs) -> str:
    """What an output frame of another kind holds, in words."""
    if kind == NOT_VRMBG:
        return "a file that is not a vrmbg matte"
    if kind == OTHER_SHOT:
        if detail.startswith("written by"):
            return f"a matte {detail}"
        name = f" ({detail})" if detail else ""
        return (f"another plate's matte{name}: its shot's first frame holds other "
                "pictures than these plates")
    if kind == START_CHANGED:
        return f"a chain that starts at frame {detail}, not at the shot start {shot.start}"
    if kind == OTHER_SETTINGS:
        return ("a matte rendered with other settings"
                + (f" ({detail})" if detail else ""))
    return kind


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """`name: old -> new` for each chain setting that differs (colour texts shortened to
    the parts that differ)."""
    out = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name, "-"), new.get(name, "-")
        if str(before) == str(after):
            continue
        if isinstance(before, str) and isinstance(after, str) and "|" in before + after:
            first, second = before.split("|"), after.split("|")
            before = "|".join(p for p in first if p not in second) or before
            after = "|".join(p for p in second if p not in first) or after
        out.append(f"{name}: {before} -> {after}")
    return out


def _identity(stamp: Mapping[str, Any]) -> dict[str, Any]:
    """The chain settings an output frame's stamp records ({} when absent)."""
    try:
        value = json.loads(str(stamp.get("identity") or "{}"))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _grouped(conflicts: Iterable[Conflict]) -> list[tuple[str, list[int], str]]:
    """Conflicts grouped by (kind, detail), in frame order of their first frame."""
    groups: dict[tuple[str, str], list[int]] = {}
    for item in sorted(conflicts, key=lambda c: c.frame):
        groups.setdefault((item.kind, item.detail), []).append(item.frame)
    return [(kind, frames, detail) for (kind, detail), frames in groups.items()]
