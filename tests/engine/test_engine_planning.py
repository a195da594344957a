"""Planning without a model or files: which frames a request computes, from which state.

The plans are checked against what a straight run needs: every requested frame is computed
or already valid, every computed frame continues from the frame just before it in the chain
(or from a zero prior at the chain's start), and nothing valid before the request is redone.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vrmbg.core.engine.cache import StateEntry
from vrmbg.core.engine.chain import ChainFrames, fold_keys
from vrmbg.core.engine.planning import has_state, plan_exact, plan_preroll, skippable
from vrmbg.core.engine.session import SETTING_IN_IDENTITY
from vrmbg.plugin import schema

DIGEST = "d" * 64
SHOT = ChainFrames(range(1001, 1021))


def fingerprint(frame: int) -> str:
    return f"plate-{frame}"


def exact_keys(last: int) -> dict[int, str]:
    return fold_keys(DIGEST, SHOT.between(SHOT.first, last), fingerprint)


def stored(frames, start: int = 1001, keys=None) -> dict[int, list[StateEntry]]:
    keys = keys or exact_keys(1020)
    return {f: [StateEntry(f, start, keys[f][:32], f"/cache/{f}.npy")] for f in frames}


def test_an_empty_cache_computes_from_the_shot_start():
    (run,) = plan_exact(SHOT, [1005], exact_keys(1005), {}, set())
    assert run.prior is None and run.frames == SHOT.between(1001, 1005)


def test_a_jump_resumes_after_the_greatest_stored_state_before_it():
    states = stored([1001, 1002, 1003, 1007])
    (run,) = plan_exact(SHOT, [1006], exact_keys(1006), states, set())
    assert run.prior == 1003 and run.frames == [1004, 1005, 1006]


def test_a_state_for_other_plates_is_not_resumed_from():
    other = fold_keys(DIGEST, SHOT.between(1001, 1020), lambda f: f"other-{f}")
    states = {**stored([1001, 1002]), 1003: [StateEntry(1003, 1001, other[1003][:32], "x")]}
    (run,) = plan_exact(SHOT, [1005], exact_keys(1005), states, set())
    assert run.prior == 1002 and run.frames == [1003, 1004, 1005]


def test_valid_frames_inside_a_range_are_skipped_and_continued_from():
    keys = exact_keys(1010)
    states = stored([1006, 1007])
    candidates = skippable(SHOT, [1004, 1010], keys, states)
    assert candidates == [1006, 1007]
    runs = plan_exact(SHOT, [1004, 1010], keys, states, valid={1006, 1007})
    assert [(r.prior, r.frames) for r in runs] == [(None, SHOT.between(1001, 1005)),
                                                 (1007, [1008, 1009, 1010])]


def test_a_frame_whose_matte_is_not_valid_is_recomputed_even_with_a_state():
    keys = exact_keys(1010)
    runs = plan_exact(SHOT, [1004, 1010], keys, stored([1006, 1007]), valid=set())
    assert [(r.prior, r.frames) for r in runs] == [(None, SHOT.between(1001, 1010))]


def test_preroll_starts_a_bounded_window_before_each_far_frame():
    runs = plan_preroll(SHOT, [1010, 1018], 3, DIGEST, fingerprint, {})
    assert [(r.prior, r.start, r.frames) for r in runs] == [
        (None, 1007, [1007, 1008, 1009, 1010]), (None, 1015, [1015, 1016, 1017, 1018])]


def test_preroll_frames_close_together_share_one_run():
    (run,) = plan_preroll(SHOT, [1010, 1012], 3, DIGEST, fingerprint, {})
    assert run.start == 1007 and run.frames == SHOT.between(1007, 1012)
    assert run.keys[1012] == fold_keys(DIGEST, SHOT.between(1007, 1012), fingerprint)[1012]


def test_preroll_continues_from_a_stored_state_inside_its_window():
    keys = fold_keys(DIGEST, SHOT.between(1004, 1008), fingerprint)
    states = {1008: [StateEntry(1008, 1004, keys[1008][:32], "x")]}
    (run,) = plan_preroll(SHOT, [1010], 3, DIGEST, fingerprint, states)
    assert (run.prior, run.start, run.frames) == (1008, 1004, [1009, 1010])


@settings(max_examples=200, deadline=None)
@given(stored_frames=st.sets(st.integers(1001, 1020)), valid_frames=st.sets(st.integers(1001, 1020)),
       todo=st.sets(st.integers(1001, 1020), min_size=1))
def test_exact_plans_compute_in_chain_order_from_a_stored_prior(stored_frames, valid_frames, todo):
    todo = sorted(todo)
    keys = exact_keys(todo[-1])
    states = stored(stored_frames)
    candidates = skippable(SHOT, todo, keys, states)
    valid = set(candidates) & valid_frames
    runs = plan_exact(SHOT, todo, keys, states, valid)
    computed = [f for run in runs for f in run.frames]
    assert computed == sorted(set(computed)), "each frame once, in order"
    assert set(todo) <= set(computed) | valid
    for run in runs:
        expected_prior = SHOT.frames[SHOT.index(run.frames[0]) - 1] \
            if run.frames[0] != SHOT.first else None
        assert run.prior == expected_prior, "a run continues from the frame just before it"
        if run.prior is not None:
            assert has_state(states, run.prior, 1001, keys[run.prior])
        assert run.frames == SHOT.between(run.frames[0], run.frames[-1])


def test_every_result_affecting_setting_reaches_the_chain_identity():
    affecting = {p.name for p in schema.PARAMS if p.affects_result}
    assert affecting == set(SETTING_IN_IDENTITY), (
        "a setting that changes mattes must reach the chain identity (SETTING_IN_IDENTITY)")
