"""Which output frames a render writes, skips or must not touch: a pure decision.

    plan = plan_outputs(requested, existing_stamps, expected_keys, shot, plate_ids,
                        resume=True, overwrite=False)

Nothing here reads or writes a file: the caller reads the `vrmbg:*` stamps of the output
frames on disk (requested or not), the keys today's chain gives each frame, and the content
identity of today's plate frames, and gets back the to-do list, the frames already finished,
the frames it must refuse (and why), and what it should warn about: output frames outside the
request that are stale (an earlier plate frame changed since they were written) or belong to
another chain.

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


@dataclass(frozen=True)
class OutputPlan:
    """The outcome of `plan_outputs`."""

    todo: tuple[int, ...]  # frames to write, in order
    skipped: tuple[int, ...]  # finished already (this chain, today's key)
    replaced: tuple[int, ...]  # frames of `todo` that exist and will be rewritten
    conflicts: tuple[Conflict, ...]  # requested frames refused (empty with overwrite)
    stale: tuple[int, ...]  # not requested, this chain, but earlier plates changed since
    foreign: tuple[Conflict, ...]  # not requested, of another chain or shot

    def warnings(self, shot: ShotOutputs) -> list[str]:
        """What a user must hear about the output folder after this render."""
        lines = []
        if self.stale:
            spec = format_frame_ranges(self.stale)
            lines.append(f"output frames {spec} are stale: plate frames before them changed "
                         f"since they were rendered; re-render them with --frames {spec}")
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


def plan_outputs(requested: Iterable[int], existing: Mapping[int, Mapping[str, Any] | None],
                 expected: Mapping[int, str], shot: ShotOutputs, plate_ids: Mapping[int, str],
                 *, resume: bool = True, overwrite: bool = False) -> OutputPlan:
    """Decide every requested frame, and check the output frames outside the request.

    `existing`: frame -> stamp of each output frame on disk (None or {} when it has none);
    `expected`: frame -> today's key of this chain (frames outside the shot left out).
    A requested frame is skipped when it is this chain's, of the same output type, and
    carries today's key (unless `resume` is off); it is rewritten when only its key is stale,
    when it is this shot's approximation and this render is exact, or with `overwrite`;
    anything else is a conflict.
    """
    wanted = sorted(set(int(f) for f in requested))
    todo, skipped, replaced, conflicts = [], [], [], []
    for frame in wanted:
        if frame not in existing:
            todo.append(frame)
            continue
        stamp = existing[frame] or {}
        kind, detail = relation(stamp, shot, plate_ids)
        finished = (kind == OURS and resume and stamp.get("output_type") == shot.output_type
                    and stamp.get("key") == expected.get(frame))
        if finished:
            skipped.append(frame)
        elif kind == OURS or (kind == APPROX_OURS and shot.exact) or overwrite:
            todo.append(frame)
            replaced.append(frame)
        else:
            conflicts.append(Conflict(frame, kind, detail))
    stale, foreign = [], []
    asked = set(wanted)
    for frame in sorted(f for f in existing if f not in asked):
        stamp = existing[frame] or {}
        kind, detail = relation(stamp, shot, plate_ids)
        if kind == OURS and shot.exact and stamp.get("key") != expected.get(frame):
            stale.append(frame)
        elif kind in (START_CHANGED, OTHER_SETTINGS, OTHER_SHOT):
            foreign.append(Conflict(frame, kind, detail))
    return OutputPlan(tuple(todo), tuple(skipped), tuple(replaced), tuple(conflicts),
                      tuple(stale), tuple(foreign))


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
