"""Broken plates fail cleanly: a seeded sample of the hostile-input set run through the real
command line in child processes (the whole set: tests/benchmarks/hostile_inputs.py)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from hostile_cases import Case, all_cases, parse_exr, run_case, sample, write_sources

from vrmbg.core.errors import InputError, library_text
from vrmbg.core.io.plates import PlateSequence

INFO_CASES = 28   # `vrmbg info` on each (a quarter of a second each)
RENDER_CASES = 8  # `vrmbg render` too on these (a few seconds each: torch starts)


def test_library_text_survives_bytes_that_are_not_utf8():
    def broken() -> str:
        raise UnicodeDecodeError("utf-8", b"bad \xff\xfe name\nsecond line", 4, 5, "invalid")

    assert library_text(broken) == "bad \ufffd\ufffd name second line"
    assert library_text(lambda: b"raw \xff", "x") == "raw \ufffd"
    assert library_text(lambda: "", "unknown error") == "unknown error"


def test_undecodable_library_error_is_one_line_naming_file_and_frame(tmp_path):
    data = write_sources(str(tmp_path / "src"))["exr_scanline"]
    channels = next(a for a in parse_exr(data).headers[0] if a.name == "channels")
    broken = bytearray(data)
    type_at = channels.size_at - 1 - len(channels.type)
    broken[type_at:type_at + 2] = b"\xff\xfe"  # OpenEXR quotes the type name in its error
    path = tmp_path / "sh010.1001.exr"
    path.write_bytes(bytes(broken))
    with pytest.raises(InputError) as caught:
        PlateSequence(str(tmp_path / "sh010.####.exr")).read(1001)
    text = str(caught.value)
    assert str(path) in text and "frame 1001" in text and "\n" not in text


def test_the_set_is_seeded_and_covers_every_source(tmp_path):
    first = all_cases(str(tmp_path / "a"))
    second = all_cases(str(tmp_path / "b"))
    assert [(c.name, c.data) for c in first] == [(c.name, c.data) for c in second]
    assert len(first) > 500
    assert {c.source for c in first} == {"exr_scanline", "exr_tiled", "exr_multipart",
                                          "dpx", "png"}
    names = " ".join(c.name for c in first)
    for kind in ("truncate", "table", "chunk", "magic", "zero-bytes", "size-huge", "flip"):
        assert kind in names


def test_sample_of_broken_plates_fails_cleanly(tmp_path, model):
    cases = sample(all_cases(str(tmp_path / "sources")), INFO_CASES)
    rendered = {c.name for c in cases[::max(1, len(cases) // RENDER_CASES)]}

    def one(indexed: tuple[int, Case]):
        index, case = indexed
        return run_case(case, str(tmp_path / f"case é {index}"), model,
                        render=case.name in rendered)

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = [o for group in pool.map(one, enumerate(cases)) for o in group]
    assert len(outcomes) >= INFO_CASES + RENDER_CASES - 1
    problems = [f"{o.case} ({o.command}, exit {o.exit_code}): {', '.join(o.problems)}: "
                f"{o.stderr.strip()[-300:]}" for o in outcomes if o.problems]
    assert not problems, "\n".join(problems)
    assert any(o.exit_code == 3 for o in outcomes)
    assert os.path.isdir(str(tmp_path / "sources"))
