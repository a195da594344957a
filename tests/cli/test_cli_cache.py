"""`vrmbg cache ls|info|clear|prune` on cache folders, and where the cache lives."""

from __future__ import annotations

import json
import os

import torch

from cache_helpers import fake_chain
from vrmbg.core.cli import main
from vrmbg.core.cli.cache_cmd import parse_size
from vrmbg.core.engine import cache
from vrmbg.core.engine.lock import ChainLock
from vrmbg.core.model.loader import init_random

DAY = 86400.0


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main(["cache", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_ls_lists_chains_least_recently_used_first(tmp_path, capsys):
    fake_chain(tmp_path, "sh010-aaaa0000", "1111111111111111", last_used=3 * DAY)
    fake_chain(tmp_path, "sh020-bbbb0000", "2222222222222222", frames=(5, 6, 7, 9),
               last_used=1 * DAY)
    code, out, _ = run_cli(capsys, "ls", "--cache-dir", str(tmp_path), "--json")
    assert code == 0
    listing = json.loads(out)
    assert [c["chain_id"] for c in listing["chains"]] == ["2222222222222222", "1111111111111111"]
    assert listing["chains"][0]["frames"] == "5-7,9"
    assert listing["chains"][0]["bytes"] >= 4000
    code, out, _ = run_cli(capsys, "ls", "--cache-dir", str(tmp_path))
    assert "sh010-aaaa0000" in out and "1001-1002" in out


def test_info_by_chain_or_shot_and_unknown_names(tmp_path, capsys):
    fake_chain(tmp_path, "sh010-aaaa0000", "1111111111111111")
    fake_chain(tmp_path, "sh010-aaaa0000", "3333333333333333", tier="preview")
    code, out, _ = run_cli(capsys, "info", "1111", "--cache-dir", str(tmp_path), "--json")
    assert [c["chain_id"] for c in json.loads(out)["chains"]] == ["1111111111111111"]
    code, out, _ = run_cli(capsys, "info", "sh010", "--cache-dir", str(tmp_path), "--json")
    assert sorted(c["tier"] for c in json.loads(out)["chains"]) == ["final", "preview"]
    code, out, err = run_cli(capsys, "info", "nope", "--cache-dir", str(tmp_path))
    assert code == 2 and "nope" in err and len(err.strip().splitlines()) == 1


def test_an_output_folder_stands_for_the_render_cache_inside_it(tmp_path, capsys):
    output = tmp_path / "mattes"
    inner = output / cache.RENDER_CACHE_FOLDER
    chain = fake_chain(inner, "sh010-aaaa0000", "1111111111111111")
    (output / "sh010.1001.exr").write_bytes(b"matte")  # the render's outputs beside it
    code, out, err = run_cli(capsys, "ls", "--cache-dir", str(output), "--json")
    listing = json.loads(out)
    assert code == 0 and listing["cache_dir"] == str(inner)
    assert [c["chain_id"] for c in listing["chains"]] == ["1111111111111111"]
    assert str(inner) in err  # said on stderr, so the JSON stays clean
    code, _, _ = run_cli(capsys, "clear", "--all", "--cache-dir", str(output))
    assert code == 0 and not os.path.exists(chain)
    assert os.path.isfile(output / "sh010.1001.exr")  # outputs are never touched


def test_a_cache_with_chains_of_its_own_is_used_as_given(tmp_path, capsys):
    own = fake_chain(tmp_path, "sh020-bbbb0000", "2222222222222222")
    fake_chain(tmp_path / cache.RENDER_CACHE_FOLDER, "sh010-aaaa0000", "1111111111111111")
    code, out, err = run_cli(capsys, "ls", "--cache-dir", str(tmp_path), "--json")
    listing = json.loads(out)
    assert listing["cache_dir"] == str(tmp_path) and "render cache" not in err
    assert [c["chain_id"] for c in listing["chains"]] == ["2222222222222222"]
    assert os.path.isdir(own)


def test_clear_needs_a_selector_and_removes_only_what_is_named(tmp_path, capsys):
    keep = fake_chain(tmp_path, "sh010-aaaa0000", "1111111111111111")
    preview = fake_chain(tmp_path, "sh010-aaaa0000", "3333333333333333", tier="preview")
    other = fake_chain(tmp_path, "sh020-bbbb0000", "2222222222222222")
    code, _, err = run_cli(capsys, "clear", "--cache-dir", str(tmp_path))
    assert code == 2 and "--all" in err
    code, _, _ = run_cli(capsys, "clear", "--tier", "preview", "--all",
                         "--cache-dir", str(tmp_path))
    assert code == 0 and not os.path.exists(preview) and os.path.isdir(keep)
    code, _, _ = run_cli(capsys, "clear", "--shot", "sh020", "--cache-dir", str(tmp_path))
    assert not os.path.exists(other) and not os.path.exists(tmp_path / "sh020-bbbb0000")
    assert os.path.isdir(keep)


def test_prune_removes_lru_first_and_never_a_chain_in_use(tmp_path, capsys):
    busy = fake_chain(tmp_path, "sh010-aaaa0000", "1111111111111111", size=5_000,
                      last_used=1 * DAY)
    older = fake_chain(tmp_path, "sh020-bbbb0000", "2222222222222222", size=5_000,
                       last_used=2 * DAY)
    newest = fake_chain(tmp_path, "sh030-cccc0000", "3333333333333333", size=5_000,
                        last_used=3 * DAY)
    lock = ChainLock(os.path.join(busy, cache.LOCK_FILE))
    assert lock.try_acquire()  # a render is using the least recently used chain
    try:
        code, out, _ = run_cli(capsys, "prune", "--max-size", "25K", "--json",
                               "--cache-dir", str(tmp_path))
    finally:
        lock.release()
    report = json.loads(out)
    assert code == 0
    assert report["kept_in_use"] == ["1111111111111111"]
    assert report["removed"] == ["2222222222222222"]
    assert report["bytes_after"] <= 25 * 1024
    assert os.path.isdir(busy) and not os.path.exists(older) and os.path.isdir(newest)
    code, out, _ = run_cli(capsys, "prune", "--max-size", "0", "--cache-dir", str(tmp_path))
    assert not os.path.exists(busy) and not os.path.exists(newest)
    assert os.listdir(tmp_path) == [cache.MARKER_FILE]  # an empty cache, still vrmbg's


def test_sizes_and_cache_root_resolution(tmp_path, monkeypatch, capsys):
    assert parse_size("500M") == 500 * 1024 ** 2
    assert parse_size("1.5g") == int(1.5 * 1024 ** 3)
    assert parse_size("10GiB") == 10 * 1024 ** 3 and parse_size("123") == 123
    assert main(["cache", "prune", "--max-size", "lots"]) == 2
    monkeypatch.delenv("VRMBG_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.default_cache_root() == str(tmp_path / "xdg" / "vrmbg")
    monkeypatch.setenv("VRMBG_CACHE", str(tmp_path / "env"))
    assert cache.default_cache_root() == str(tmp_path / "env")
    assert cache.default_cache_root(str(tmp_path / "explicit")) == str(tmp_path / "explicit")
    fake_chain(tmp_path / "env", "sh010-aaaa0000", "1111111111111111")
    code, out, _ = run_cli(capsys, "ls", "--json")
    assert json.loads(out)["chains"][0]["chain_id"] == "1111111111111111"


def test_a_real_render_chain_is_listed_with_its_frames_and_settings(tmp_path, capsys):
    from session_helpers import make_plates, make_session, model

    pattern = make_plates(str(tmp_path / "plates"), frames=range(1001, 1005))
    loaded = model(init_random(str(tmp_path / "model"), "tiny", seed=1))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        session = make_session(pattern, str(tmp_path / "cache"), loaded)
        session.ensure(1003)
    finally:
        torch.set_num_threads(threads)
    code, out, _ = run_cli(capsys, "info", session.chain_id, "--json",
                           "--cache-dir", str(tmp_path / "cache"))
    chain = json.loads(out)["chains"][0]
    assert chain["frames"] == "1001-1003" and chain["tier"] == "final"
    assert chain["settings"]["resolution"] == session.identity["resolution"]
    assert chain["plate"] == pattern and not chain["locked"]


def _with_plate(folder: str, plate: str) -> None:
    """Record `plate` as the chain's plates in its chain.json (as the engine does)."""
    path = os.path.join(folder, "chain.json")
    with open(path) as handle:
        data = json.load(handle)
    data["plate"] = plate
    with open(path, "w") as handle:
        json.dump(data, handle)


def test_shots_are_found_by_their_plates_in_any_spelling(tmp_path, capsys):
    folder = fake_chain(tmp_path, "sh010-aaaa0000", "1111111111111111")
    _with_plate(folder, str(tmp_path / "plates" / "sh010.####.exr"))
    fake_chain(tmp_path, "sh020-bbbb0000", "2222222222222222")
    for name in ("sh010.####.exr", "sh010.%04d.exr", str(tmp_path / "plates" / "sh010.$F4.exr")):
        code, out, err = run_cli(capsys, "info", name, "--cache-dir", str(tmp_path), "--json")
        assert code == 0, err
        assert [c["chain_id"] for c in json.loads(out)["chains"]] == ["1111111111111111"], name
    code, _, err = run_cli(capsys, "info", str(tmp_path / "other" / "sh010.####.exr"),
                           "--cache-dir", str(tmp_path))
    assert code == 2
    code, out, _ = run_cli(capsys, "clear", "--shot", "sh010.####.exr", "--cache-dir",
                           str(tmp_path), "--json")
    assert json.loads(out)["removed"] == ["1111111111111111"]


def test_cache_dir_may_be_the_render_output_pattern(tmp_path, capsys):
    inner = tmp_path / "mattes" / ".vrmbg-cache"
    fake_chain(inner, "sh010-aaaa0000", "1111111111111111")
    code, out, err = run_cli(capsys, "ls", "--cache-dir",
                             str(tmp_path / "mattes" / "sh010.####.exr"), "--json")
    assert code == 0, err
    assert json.loads(out)["cache_dir"] == str(inner)
    assert [c["chain_id"] for c in json.loads(out)["chains"]] == ["1111111111111111"]


def test_rendering_from_the_cache_counts_as_use_for_prune(tmp_path, model, capsys):
    from render_helpers import frame_file, make_plates, render_args, run_json

    pattern = make_plates(str(tmp_path / "plates"), range(1001, 1004))
    output = str(tmp_path / "out" / "sh010.####.exr")
    first = run_json(render_args(pattern, output, model), capsys)
    chain_file = os.path.join(first["cache_folder"], "chain.json")
    os.utime(chain_file, (DAY, DAY))
    os.remove(frame_file(output, 1002))
    again = run_json(render_args(pattern, output, model), capsys)
    assert again["frames_from_cache"] == 1 and again["frames_computed"] == 0
    assert os.stat(chain_file).st_mtime > DAY
