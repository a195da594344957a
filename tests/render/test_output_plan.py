"""The output planner without a model or a file: what a re-render writes, skips and refuses.

These are the decisions a TD relies on when re-rendering into a folder that already holds
mattes: finished frames are skipped, frames whose plates changed are rewritten (and those
outside the request are named stale), and another plate's or another chain's mattes are never
replaced without --overwrite.
"""

from __future__ import annotations

from vrmbg.core.render.output_plan import (NOT_VRMBG, OTHER_SETTINGS, OTHER_SHOT, START_CHANGED,
                                    ShotOutputs, conflict_message, plan_outputs)

SHOT = ShotOutputs(label="sh010.####.exr", plate_id="aaaa", layer="", part="", start=1001,
                   chain_id="c1", identity={"model": "m", "compute": "cpu:threads=2"},
                   output_type="alpha", exact=True)
TODAY = {1001: "aaaa"}  # content identity of today's plate frame 1001


def stamp(frame: int, key: str = "", **changes) -> dict:
    """The stamp this render would write on `frame`, with `changes`."""
    value = {**SHOT.stamp(), "key": key or f"k{frame}", "exact": 1}
    value.update(changes)
    return value


def expected(frames) -> dict:
    return {f: f"k{f}" for f in frames}


def test_finished_frames_are_skipped_and_missing_ones_written():
    existing = {f: stamp(f) for f in (1001, 1002)}
    plan = plan_outputs([1001, 1002, 1003], existing, expected(range(1001, 1004)), SHOT, TODAY)
    assert plan.skipped == (1001, 1002)
    assert plan.todo == (1003,)
    assert plan.replaced == () and plan.conflicts == ()


def test_a_changed_plate_rewrites_that_frame_on_and_names_later_outputs_stale():
    existing = {f: stamp(f) for f in range(1001, 1011)}
    keys = {**expected(range(1001, 1004)), **{f: f"new{f}" for f in range(1004, 1011)}}
    plan = plan_outputs(range(1001, 1007), existing, keys, SHOT, TODAY)
    assert plan.skipped == (1001, 1002, 1003)
    assert plan.todo == plan.replaced == (1004, 1005, 1006)
    assert plan.stale == (1007, 1008, 1009, 1010)
    assert "1007-1010 are stale" in plan.warnings(SHOT)[0]


def test_another_plate_version_is_refused_unless_overwrite():
    other = {f: stamp(f, plate_id="bbbb") for f in (1001, 1002)}
    plan = plan_outputs([1001, 1002], other, expected([1001, 1002]), SHOT, TODAY)
    assert [c.kind for c in plan.conflicts] == [OTHER_SHOT, OTHER_SHOT]
    assert "another plate" in conflict_message(plan.conflicts, SHOT)
    forced = plan_outputs([1001, 1002], other, expected([1001, 1002]), SHOT, TODAY,
                          overwrite=True)
    assert forced.todo == forced.replaced == (1001, 1002) and forced.conflicts == ()


def test_a_moved_shot_start_is_said_with_the_way_out():
    # rendered when the shot started at 1001; the plates now start at 995
    moved = ShotOutputs(**{**SHOT.__dict__, "start": 995, "plate_id": "head", "chain_id": "c2"})
    existing = {f: stamp(f) for f in (1001, 1002)}
    plan = plan_outputs([1001, 1002], existing, expected([1001, 1002]), moved,
                        {995: "head", 1001: "aaaa"})
    assert {c.kind for c in plan.conflicts} == {START_CHANGED}
    text = conflict_message(plan.conflicts, moved)
    assert "first frame changed" in text and "--shot-start 1001" in text
    later = plan_outputs([1003], existing, expected([1003]), moved, {995: "head", 1001: "aaaa"})
    assert later.todo == (1003,)
    assert "1001-1002" in later.warnings(moved)[0] and "mixes chains" in later.warnings(moved)[0]


def test_other_settings_name_what_differs():
    existing = {1001: stamp(1001, chain="c0", identity='{"compute":"cpu:threads=1",'
                                                       '"model":"m"}')}
    plan = plan_outputs([1001], existing, expected([1001]), SHOT, TODAY)
    assert plan.conflicts[0].kind == OTHER_SETTINGS
    assert "compute: cpu:threads=1 -> cpu:threads=2" in conflict_message(plan.conflicts, SHOT)


def test_files_that_are_not_mattes_are_refused_and_approximations_upgraded():
    existing = {1001: None, 1002: stamp(1002, chain="pre", exact=0)}
    plan = plan_outputs([1001, 1002], existing, expected([1001, 1002]), SHOT, TODAY)
    assert [(c.frame, c.kind) for c in plan.conflicts] == [(1001, NOT_VRMBG)]
    assert 1002 in plan.todo and 1002 in plan.replaced


def test_no_resume_and_another_output_type_rewrite_this_chains_frames():
    existing = {1001: stamp(1001), 1002: stamp(1002, output_type="rgba")}
    plan = plan_outputs([1001, 1002], existing, expected([1001, 1002]), SHOT, TODAY)
    assert plan.skipped == (1001,) and plan.todo == (1002,)
    fresh = plan_outputs([1001, 1002], existing, expected([1001, 1002]), SHOT, TODAY,
                         resume=False)
    assert fresh.todo == (1001, 1002)
