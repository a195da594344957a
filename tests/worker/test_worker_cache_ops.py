"""What a host learns and does about the cache through the worker: where a shot's folder is
(what a first save moves), how big the shot's cache is, and a prune that keeps what is
shown; and who may switch on a model's downloaded code (the host's own preference only)."""

from __future__ import annotations

import os
import sys

import pytest

from render_helpers import make_plates
from worker_helpers import RawWorker, opened, tiny_settings
from vrmbg.core.model import trust
from vrmbg.plugin.client import EngineClient
from vrmbg.plugin.protocol import TRUST_REMOTE_CODE_VARIABLE
from vrmbg.plugin.requests import EngineError
from vrmbg.plugin.worker_process import engine_environment

FIRST = 1001


@pytest.fixture
def worker():
    process = RawWorker()
    yield process
    process.close()


def test_a_shots_place_and_size_and_a_prune_that_keeps_what_is_open(worker, model, tmp_path):
    shot = make_plates(str(tmp_path / "plates"), range(FIRST, FIRST + 3))
    cache = str(tmp_path / "cache")
    shown = opened(worker, shot, tiny_settings(model, cache), session="shown")
    old = opened(worker, shot, tiny_settings(model, cache, resolution=32), session="old")
    for session in ("shown", "old"):
        assert worker.call("ensure", session=session, frames=f"{FIRST}-{FIRST + 1}")["event"] \
            == "done"
    assert shown["cache_root"] == os.path.abspath(cache)
    shot_dir = os.path.join(cache, shown["shot_folder"])
    assert os.path.isfile(os.path.join(shot_dir, "shot.json")) and old["shot_folder"] == \
        shown["shot_folder"]
    # each session's own chain folder: what a host moves on a first save (never the others')
    assert shown["chain_folder"] == os.path.join(shown["shot_folder"], "final", shown["chain_id"])
    assert os.path.isfile(os.path.join(cache, shown["chain_folder"], "chain.json"))
    assert old["chain_folder"] != shown["chain_folder"]
    info = worker.call("cache_info", session="shown")
    assert info["shot_bytes"] > info["bytes"] > 0  # two settings of one shot
    assert info["other_chains"] == 1 and 0 < info["other_bytes"] < info["shot_bytes"]
    assert worker.call("close", session="old")["event"] == "done"

    pruned = worker.call("prune", session="shown")  # keep nothing but what is open
    assert pruned["event"] == "done" and pruned["removed"] == [old["chain_id"]]
    assert pruned["bytes_freed"] > 0 and pruned["bytes"] == info["bytes"]
    assert pruned["shot_bytes"] - pruned["bytes"] < 1024  # the shot's shot.json alone
    assert (pruned["other_chains"], pruned["other_bytes"]) == (0, 0)  # never the shot's files
    assert worker.call("cache_info", session="shown")["cached_count"] == 2
    assert worker.call("prune", session="shown", scope="cache")["removed"] == []

    bad = worker.call("prune", session="shown", scope="everything")
    assert bad["event"] == "error" and bad["code"] == 2 and "scope" in bad["message"]


def test_the_hosts_preference_and_only_it_lets_the_worker_run_model_code(monkeypatch):
    assert TRUST_REMOTE_CODE_VARIABLE == trust.ALLOW_ENV  # one name on both sides
    monkeypatch.delenv(TRUST_REMOTE_CODE_VARIABLE, raising=False)
    assert TRUST_REMOTE_CODE_VARIABLE not in engine_environment(None)
    assert engine_environment(None, True)[TRUST_REMOTE_CODE_VARIABLE] == "1"
    settings = {"model": "/no/such/model", "trust_remote_code": True}
    answers = {}
    for allowed in (False, True):
        client = EngineClient(sys.executable, allow_remote_code=allowed)
        try:
            with pytest.raises(EngineError) as raised:
                client.open("/plates/none.####.exr", settings, timeout=120)
            answers[allowed] = raised.value.message
        finally:
            client.shutdown()
    assert "trust_remote_code refused" in answers[False]
    assert "refused" not in answers[True]  # it got past the trust check to the plates
