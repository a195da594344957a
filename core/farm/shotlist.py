"""Shot lists: many shots rendered with one command or one farm job.

A SHOTLIST is JSON

    {"shots": [{"name": "sh010", "input": "plates/sh010.####.exr",
                "output": "mattes/sh010.####.exr", "frames": "1001-1100",
                "input_colorspace": "ACEScg"}]}

or CSV with a header row of the same keys (an empty cell = not set). `name`, `input`,
`output` and `frames` are required; any other key is a render setting from the parameter
schema (the same names as the `vrmbg render` flags, with `_` for `-`) and overrides the
job-wide value for that shot. Relative paths (input, output, path settings, and a model
folder that exists there) resolve against the shot list's own folder, so a shot list can
travel with its plates.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ...plugin import schema
from ..errors import UsageError
from ..io.frames import format_frame_ranges, parse_frame_spec

BUNDLED_MODEL = "demo"  # `--model demo`: the model shipped in the package, never a path
REQUIRED_KEYS = ("name", "input", "output", "frames")
# Letters, digits, `_`, `-`, `.`; starts with a letter or digit; safe as a file name, an
# OpenJD task value, an OpenCue layer name and a log prefix.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$")


def setting_names() -> list[str]:
    """Render settings a shot may override: the schema parameters the command line has."""
    return [p.name for p in schema.for_host("cli")]


# Settings a shot list may never carry: only the person running vrmbg switches them on.
PERSONAL_KEYS = ("trust_remote_code",)


def valid_keys() -> list[str]:
    """Every key a shot may carry, required ones first."""
    return [*REQUIRED_KEYS, *(name for name in setting_names() if name not in PERSONAL_KEYS)]


@dataclass(frozen=True)
class Shot:
    """One shot of a shot list, paths absolute, frames parsed, overrides coerced."""

    name: str
    input: str
    output: str
    frames: tuple[int, ...]
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def frame_spec(self) -> str:
        """Canonical frame spec of the shot (e.g. `1001-1100`), as `--frames` takes it."""
        return format_frame_ranges(self.frames)


def load_shotlist(path: str | os.PathLike) -> list[Shot]:
    """Read and validate a JSON or CSV shot list; UsageError names the shot and key at fault."""
    path = os.path.abspath(os.fspath(path))
    records = _read_records(path)
    if not records:
        raise UsageError("the shot list has no shots", path=path)
    folder = os.path.dirname(path)
    shots = [_shot_from_record(record, index, folder, path)
             for index, record in enumerate(records, start=1)]
    _check_unique(shots, path)
    return shots


def _read_records(path: str) -> list[dict[str, Any]]:
    """Raw shot records from a `.csv` file, or JSON (any other extension)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
    except OSError as exc:
        raise UsageError(f"cannot read the shot list ({exc.strerror})", path=path) from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"the shot list is not UTF-8 text (byte {exc.start})",
                         path=path) from None
    if path.lower().endswith(".csv"):
        return _csv_records(text, path)
    return _json_records(text, path)


def _json_records(text: str, path: str) -> list[dict[str, Any]]:
    """Shots of a JSON shot list: `{"shots": [...]}` (a bare list is accepted too)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"not valid JSON: {exc.msg} at line {exc.lineno}", path=path) from None
    except RecursionError:
        raise UsageError("the JSON nests too deeply to be a shot list", path=path) from None
    shots = data.get("shots") if isinstance(data, dict) else data
    if not isinstance(shots, list):
        raise UsageError('expected {"shots": [ {...}, ... ]}', path=path)
    for index, record in enumerate(shots, start=1):
        if not isinstance(record, dict):
            raise UsageError(f"shot #{index} is not an object of keys and values", path=path)
        _check_json_types(record, index, path)
    return [{k: v for k, v in record.items() if v is not None} for record in shots]


_JSON_TYPES = {"str": (str,), "path": (str,), "enum": (str,), "frames": (str, int),
               "int": (int,), "float": (int, float), "bool": (bool,)}
_TYPE_WORDS = {str: "text", int: "a whole number", float: "a number", bool: "true or false"}


def _check_json_types(record: Mapping[str, Any], index: int, path: str) -> None:
    """Refuse JSON values of the wrong type (a list as a path, 1.5 threads, "yes" for a
    flag) instead of turning them into text or numbers nobody meant."""
    label = f"shot {record['name']!r}" if isinstance(record.get("name"), str) else f"shot #{index}"
    kinds = {"name": "str", "input": "path", "output": "path", "frames": "frames"}
    for key, value in record.items():
        kind = kinds.get(key) or (schema.get(key).kind if key in setting_names() else "")
        if value is None or not kind:
            continue  # unset, or an unknown key (reported with the valid keys later)
        allowed = _JSON_TYPES.get(kind, (str,))
        wrong = isinstance(value, bool) and bool not in allowed
        if wrong or not isinstance(value, allowed):
            words = " or ".join(_TYPE_WORDS[t] for t in allowed)
            raise UsageError(f"{label}: {key} must be {words}, not {json.dumps(value)[:60]}",
                             path=path)
        if isinstance(value, str) and "\0" in value:
            raise UsageError(f"{label}: {key} contains a NUL character", path=path)


def _csv_records(text: str, path: str) -> list[dict[str, Any]]:
    """Shots of a CSV shot list; empty cells are left unset, blank rows skipped."""
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        return []
    header = [key.strip() for key in rows[0]]
    repeated = sorted({key for key in header if key and header.count(key) > 1})
    if repeated:
        raise UsageError(f"the header names {', '.join(repeated)} more than once", path=path)
    records = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            raise UsageError(f"line {line} has more cells than the header", path=path)
        records.append({k: v.strip() for k, v in zip(header, row) if k and v.strip()})
    return records


def _shot_from_record(record: Mapping[str, Any], index: int, folder: str, path: str) -> Shot:
    """Validate one record: name, required keys, frames, known keys, coerced settings."""
    name = _check_name(record.get("name"), index, path)
    missing = [key for key in REQUIRED_KEYS if str(record.get(key, "")).strip() == ""]
    if missing:
        raise UsageError(f"shot {name!r} lacks {', '.join(missing)} "
                         f"(required: {', '.join(REQUIRED_KEYS)})", path=path)
    allowed = set(valid_keys())
    for key in record:
        if key in PERSONAL_KEYS:
            raise UsageError(f"shot {name!r}: {key} cannot come from a shot list (it runs "
                             "downloaded code): give --trust-remote-code on the command line "
                             "of the person running vrmbg", path=path)
        if key not in allowed:
            raise UsageError(f"shot {name!r}: unknown key {key!r} "
                             f"(valid keys: {', '.join(valid_keys())})", path=path)
    try:
        frames = tuple(parse_frame_spec(str(record["frames"])))
    except UsageError as exc:
        raise UsageError(f"shot {name!r}: frames: {exc.message}", path=path) from None
    settings = {key: _coerce_setting(key, value, name, folder, path)
                for key, value in record.items() if key not in REQUIRED_KEYS}
    return Shot(name=name, input=resolve_path(str(record["input"]), folder),
                output=resolve_path(str(record["output"]), folder), frames=frames,
                settings=settings)


def _check_name(value: Any, index: int, path: str) -> str:
    """A shot name that is safe in file names, farm task names and log prefixes."""
    name = str(value).strip() if value is not None else ""
    if not name:
        raise UsageError(f"shot #{index} has no name", path=path)
    if not NAME_PATTERN.match(name):
        raise UsageError(f"shot #{index}: name {name!r} is not farm-safe (use letters, digits, "
                         "'_', '-', '.', start with a letter or digit, at most 48 characters)",
                         path=path)
    return name


def _check_unique(shots: Iterable[Shot], path: str) -> None:
    """Names unique (ignoring case, for case-insensitive file systems) and outputs distinct."""
    names: dict[str, str] = {}
    outputs: dict[str, str] = {}
    for shot in shots:
        if shot.name.lower() in names:
            raise UsageError(f"shot name {shot.name!r} is used twice "
                             f"(also {names[shot.name.lower()]!r})", path=path)
        names[shot.name.lower()] = shot.name
        owner = outputs.setdefault(os.path.normcase(shot.output), shot.name)
        if owner != shot.name:
            raise UsageError(f"shots {owner!r} and {shot.name!r} write the same output "
                             f"{shot.output!r}", path=path)


def _coerce_setting(key: str, value: Any, shot: str, folder: str, path: str) -> Any:
    """A per-shot setting converted to its schema type, relative paths resolved."""
    try:
        coerced = schema.coerce(schema.get(key), value)
    except ValueError as exc:
        raise UsageError(f"shot {shot!r}: {exc}", path=path) from None
    return resolve_setting_path(key, coerced, folder)


def resolve_path(value: str, folder: str) -> str:
    """`value` made absolute against `folder` (home folder `~` expanded first)."""
    value = os.path.expanduser(value)
    return os.path.normpath(value if os.path.isabs(value) else os.path.join(folder, value))


def resolve_setting_path(key: str, value: Any, folder: str) -> Any:
    """Path-valued settings made absolute against `folder`; other values unchanged.

    Path settings (OCIO config, cache folder) are resolved unless empty or a URI such as
    `ocio://studio-config-latest`. A model is a Hugging Face id unless a file or folder of
    that name exists under `folder`.
    """
    if not isinstance(value, str) or not value or "://" in value:
        return value
    param = schema.get(key)
    if param.kind == "path":
        return resolve_path(value, folder)
    if key == "model" and value == BUNDLED_MODEL:
        return value  # the loader's keyword wins over a folder of that name, as in `render`
    if key == "model" and not os.path.isabs(value):
        candidate = os.path.join(folder, os.path.expanduser(value))
        if os.path.exists(candidate):
            return os.path.normpath(candidate)
    return value


def job_settings(values: Mapping[str, Any], folder: str | None = None) -> dict[str, Any]:
    """Job-wide settings from parsed flags: schema-coerced, paths made absolute (cwd).

    `values` may hold any attributes (an argparse namespace's `vars`); only command-line
    schema settings are kept.
    """
    folder = folder or os.getcwd()
    settings = {}
    for name in setting_names():
        param = schema.get(name)
        try:
            value = schema.coerce(param, values.get(name, param.default))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        settings[name] = resolve_setting_path(name, value, folder)
    return settings


def merged_settings(shot: Shot, job: Mapping[str, Any]) -> dict[str, Any]:
    """The settings one shot renders with: schema defaults < job-wide < the shot's own."""
    merged = schema.defaults(setting_names())
    merged.update({k: v for k, v in job.items() if k in merged})
    merged.update(shot.settings)
    return merged


def setting_flags(settings: Mapping[str, Any], *, skip: Iterable[str] = ()) -> list[str]:
    """`vrmbg render` flags for every setting that differs from its schema default.

    Values are attached with `=` (`--input-colorspace=ACEScg`) so a value starting with
    `-` is never mistaken for a flag; booleans become `--flag` / `--no-flag`.
    """
    skipped = set(skip)
    flags = []
    for name in setting_names():
        param = schema.get(name)
        if name in skipped or name not in settings or settings[name] == param.default:
            continue
        value = settings[name]
        if param.kind == "bool":
            flags.append(param.flag if value else "--no-" + param.flag[2:])
        else:
            flags.append(f"{param.flag}={value}")
    return flags


def render_args(shot: Shot, job: Mapping[str, Any], *, frames: str | None = None,
                skip: Iterable[str] = ()) -> list[str]:
    """Arguments after the executable that render `shot` (or the `frames` part of it)."""
    spec = frames if frames is not None else shot.frame_spec
    return ["render", shot.input, "-o", shot.output, f"--frames={spec}",
            *setting_flags(merged_settings(shot, job), skip=skip)]


def is_movie_output(path: str) -> bool:
    """True when a shot's output is a movie file (written whole, never in chunks)."""
    from ..io.formats import is_movie

    return is_movie(path)


def chunk_specs(shot: Shot, size: int) -> list[str]:
    """The shot's frames split into consecutive runs of `size` frames, as frame specs."""
    if size <= 0:
        return [shot.frame_spec]
    return [format_frame_ranges(shot.frames[i:i + size]) for i in range(0, len(shot.frames), size)]
