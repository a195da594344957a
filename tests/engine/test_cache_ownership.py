"""Only vrmbg's own files (issue 25, cases 5, 6, 7 and 16's `cache clear --shot`).

A cache is a folder vrmbg made: it carries a marker with a format version. The cache commands
refuse any other folder, adopt an unmarked one whose layout and stamps are vrmbg's, and never
delete or write anything reached through a symlink out of the cache; a render refuses a
symlinked chain, `matte/` or `state/` folder and a symlinked `chain.lock`; a cache root that is
the file-system root or the home folder is refused before anything is created.
"""

from __future__ import annotations

import json
import os

import pytest
import torch

from render_helpers import make_plates as make_render_plates
from render_helpers import mounted_tmpfs, render_args, run_cli
from cache_helpers import fake_chain
from vrmbg.core.cli import main
from vrmbg.core.engine import cache
from vrmbg.core.engine.housekeeping import remove_chain
from vrmbg.core.engine.lock import ChainLock
from vrmbg.core.errors import OutputError, UsageError
from vrmbg.core.fs import temp_path_for

MARKER = "vrmbg-cache.json"


def cache_cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["cache", *args])
    out, err = capsys.readouterr()
    return code, out, err


def files_below(folder) -> list[str]:
    """Every file and link below `folder`, relative, sorted (links are not followed)."""
    found = []
    for base, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(base, d))]:
            found.append(os.path.relpath(os.path.join(base, name), folder))
    return sorted(found)


def decoy_chain(folder) -> str:
    """Something outside the cache laid out like a chain (what a symlink would lead to)."""
    return fake_chain(folder, "decoy-00000000", "dddddddddddddddd")


def marked(root) -> dict | None:
    path = os.path.join(str(root), MARKER)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


# --------------------------------------------------------------------------- case 5: whose folder


def project_folder(root) -> list[str]:
    """An ordinary project folder with `final` and `preview` folders (not a cache)."""
    for rel in ("shotA/final/comp_v001.exr", "shotA/final/v002/comp.exr",
                "shotB/preview/edit.mov", "notes.txt"):
        path = os.path.join(str(root), rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write("work")
    return files_below(root)


@pytest.mark.parametrize("action", [("prune", "--max-size", "0"), ("clear", "--all"),
                                    ("ls",), ("info",)])
def test_cache_commands_refuse_a_project_folder(tmp_path, capsys, action):
    before = project_folder(tmp_path / "project")
    code, out, err = cache_cli(capsys, *action, "--cache-dir", str(tmp_path / "project"))
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and str(tmp_path / "project") in err
    assert "not a vrmbg cache" in err and "Traceback" not in err
    assert files_below(tmp_path / "project") == before  # nothing deleted, nothing written


def test_a_project_folder_holding_a_chain_shaped_folder_is_still_refused(tmp_path, capsys):
    project_folder(tmp_path / "project")
    fake_chain(tmp_path / "project", "sh010-aaaa0000", "1111111111111111")
    before = files_below(tmp_path / "project")
    code, _, err = cache_cli(capsys, "prune", "--max-size", "0",
                             "--cache-dir", str(tmp_path / "project"))
    assert code == 2 and ("notes.txt" in err or "shotA" in err)
    assert files_below(tmp_path / "project") == before


def test_an_unmarked_vrmbg_cache_is_adopted_with_the_hosts_folders(tmp_path, capsys):
    root = tmp_path / "vrmbg-cache"  # Blender's //vrmbg-cache, an older user or farm cache
    kept = fake_chain(root, "sh010-aaaa0000", "1111111111111111")
    gone = fake_chain(root, "sh020-bbbb0000", "2222222222222222", tier="preview")
    (root / "sh010-aaaa0000" / "shot.json").write_text(json.dumps({"plate": "/p/sh010.####.exr"}))
    nuke_input = root / "nuke-input" / "VRMBG1-0123456789ab" / "input.1001.exr"
    nuke_input.parent.mkdir(parents=True)
    nuke_input.write_bytes(b"nuke renders its input here")
    for host_keys in ("nuke-keys/VRMBG1-0123456789ab", "blender-keys/VRMBG Matte"):
        (root / host_keys).mkdir(parents=True)
        (root / host_keys / "key.1001.exr").write_bytes(b"an artist's keyframe")
    (root / ".DS_Store").write_bytes(b"")
    code, out, err = cache_cli(capsys, "ls", "--cache-dir", str(root), "--json")
    assert code == 0, err
    assert sorted(c["chain_id"] for c in json.loads(out)["chains"]) == [
        "1111111111111111", "2222222222222222"]
    assert marked(root) == {"format": 1, "made_by": "vrmbg"}
    code, _, err = cache_cli(capsys, "clear", "--tier", "preview", "--all",
                             "--cache-dir", str(root))
    assert code == 0, err
    assert not os.path.exists(gone) and os.path.isdir(kept) and nuke_input.is_file()


def test_a_marked_cache_is_used_and_a_newer_format_refused(tmp_path, capsys):
    root = tmp_path / "cache"
    fake_chain(root, "sh010-aaaa0000", "1111111111111111")
    (root / "someone-else.txt").write_text("a marked cache is vrmbg's, whatever else is in it")
    (root / MARKER).write_text(json.dumps({"format": 1, "made_by": "vrmbg"}))
    code, out, err = cache_cli(capsys, "ls", "--cache-dir", str(root), "--json")
    assert code == 0 and len(json.loads(out)["chains"]) == 1, err
    (root / MARKER).write_text(json.dumps({"format": 99, "made_by": "vrmbg"}))
    code, _, err = cache_cli(capsys, "prune", "--max-size", "0", "--cache-dir", str(root))
    assert code == 2 and "newer" in err and str(root) in err
    assert os.path.isdir(root / "sh010-aaaa0000" / "final" / "1111111111111111")


def test_in_a_marked_folder_only_chains_are_deleted(tmp_path, capsys):
    root = tmp_path / "project"  # someone rendered with --cache-dir project: it is marked
    project_folder(root)
    os.makedirs(root / "shotA" / "final" / "0123456789abcdef")  # chain-named, holds nothing
    (root / "shotA" / "final" / "0123456789abcdef" / "notes.txt").write_text("work")
    before = files_below(root)
    chain = fake_chain(root, "sh010-aaaa0000", "1111111111111111")
    (root / MARKER).write_text(json.dumps({"format": 1, "made_by": "vrmbg"}))
    code, out, err = cache_cli(capsys, "prune", "--max-size", "0", "--cache-dir", str(root),
                               "--json")
    assert code == 0 and json.loads(out)["removed"] == ["1111111111111111"], err
    assert not os.path.exists(chain) and not os.path.exists(root / "sh010-aaaa0000")
    assert files_below(root) == sorted(before + [MARKER])


def test_a_render_marks_the_cache_it_makes(tmp_path, capsys, model):
    plates = make_render_plates(str(tmp_path / "plates"), [1001, 1002])
    cache_dir = tmp_path / "cache"
    code, _, err = run_cli(render_args(plates, str(tmp_path / "m" / "sh010.####.exr"), model,
                                       cache=str(cache_dir)), capsys)
    assert code == 0, err
    assert marked(cache_dir) == {"format": 1, "made_by": "vrmbg"}
    code, out, err = cache_cli(capsys, "ls", "--cache-dir", str(cache_dir), "--json")
    assert code == 0 and len(json.loads(out)["chains"]) == 1, err


def cache_with_links(tmp_path):
    """A marked cache with one real chain and a symlinked shot, tier and chain folder, each
    leading to a decoy outside the cache."""
    root = tmp_path / "cache"
    real = fake_chain(root, "sh010-aaaa0000", "1111111111111111")
    (root / MARKER).write_text(json.dumps({"format": 1, "made_by": "vrmbg"}))
    outside = tmp_path / "outside"
    decoys = {}
    for kind in ("shot", "tier", "chain"):
        decoys[kind] = decoy_chain(outside / kind)
    os.symlink(outside / "shot" / "decoy-00000000", root / "sh020-bbbb0000")
    os.makedirs(root / "sh030-cccc0000")
    os.symlink(outside / "tier" / "decoy-00000000" / "final", root / "sh030-cccc0000" / "final")
    os.symlink(decoys["chain"], root / "sh010-aaaa0000" / "final" / "2222222222222222")
    return root, real, outside


@pytest.mark.parametrize("action", [("prune", "--max-size", "0"), ("clear", "--all"),
                                    ("clear", "--shot", "sh010")])
def test_symlinked_shot_tier_and_chain_folders_are_never_followed(tmp_path, capsys, action):
    root, real, outside = cache_with_links(tmp_path)
    before = files_below(outside)
    code, out, err = cache_cli(capsys, *action, "--cache-dir", str(root), "--json")
    assert code == 0, err
    assert json.loads(out)["removed"] == ["1111111111111111"]
    assert not os.path.exists(real)
    assert files_below(outside) == before  # nothing deleted or created through a link
    assert "symbolic link" in err


def test_ls_does_not_list_what_a_link_leads_to(tmp_path, capsys):
    root, _, _ = cache_with_links(tmp_path)
    code, out, err = cache_cli(capsys, "ls", "--cache-dir", str(root), "--json")
    assert code == 0, err
    assert [c["chain_id"] for c in json.loads(out)["chains"]] == ["1111111111111111"]


def test_a_symlinked_chain_lock_is_refused_and_never_created_through(tmp_path):
    chain = tmp_path / "cache" / "sh010-aaaa0000" / "final" / "1111111111111111"
    chain.mkdir(parents=True)
    target = tmp_path / "outside" / "planted.lock"
    target.parent.mkdir()
    os.symlink(target, chain / cache.LOCK_FILE)
    with pytest.raises(OutputError) as error:
        ChainLock(str(chain / cache.LOCK_FILE)).try_acquire()
    assert "symbolic link" in str(error.value) and str(chain) in str(error.value)
    assert not target.exists()


def test_deleting_a_chain_with_a_symlinked_lock_removes_the_link_only(tmp_path, capsys):
    root = tmp_path / "cache"
    chain = fake_chain(root, "sh010-aaaa0000", "1111111111111111")
    target = tmp_path / "outside" / "planted.lock"
    target.parent.mkdir()
    os.symlink(target, os.path.join(chain, cache.LOCK_FILE))
    code, out, err = cache_cli(capsys, "clear", "--all", "--cache-dir", str(root), "--json")
    assert code == 0 and json.loads(out)["removed"] == ["1111111111111111"], err
    assert not target.exists() and os.listdir(tmp_path / "outside") == []


def test_a_symlinked_chain_folder_is_not_deleted_through_by_remove_chain(tmp_path):
    decoy = decoy_chain(tmp_path / "outside")
    before = files_below(tmp_path / "outside")
    tier = tmp_path / "cache" / "sh010-aaaa0000" / "final"
    tier.mkdir(parents=True)
    os.symlink(decoy, tier / "1111111111111111")
    with pytest.raises(OutputError):
        remove_chain(str(tier / "1111111111111111"))
    assert files_below(tmp_path / "outside") == before


# --------------------------------------------------------------------------- case 6: renders


@pytest.fixture(scope="module")
def engine_shot(tmp_path_factory):
    from session_helpers import make_plates, model
    from vrmbg.core.model.loader import init_random

    root = tmp_path_factory.mktemp("ownership")
    pattern = make_plates(str(root / "plates"), frames=range(1001, 1004))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield pattern, model(init_random(str(root / "model"), "tiny", seed=1))
    finally:
        torch.set_num_threads(threads)


def new_session(engine_shot, cache_root):
    from session_helpers import make_session

    pattern, loaded = engine_shot
    return make_session(pattern, str(cache_root), loaded)


@pytest.mark.parametrize("folder", [cache.MATTE_DIR, cache.STATE_DIR])
def test_a_render_never_writes_into_a_symlinked_matte_or_state_folder(tmp_path, engine_shot,
                                                                     folder):
    session = new_session(engine_shot, tmp_path / "cache")
    os.makedirs(session.folder)
    decoy = tmp_path / "outside"
    decoy.mkdir()
    os.symlink(decoy, os.path.join(session.folder, folder))
    with pytest.raises(OutputError) as error:
        session.ensure(1002)
    assert os.path.join(session.folder, folder) in str(error.value)
    assert "symbolic link" in str(error.value)
    assert os.listdir(decoy) == []


@pytest.mark.parametrize("level", ["chain", "tier", "shot"])
def test_a_render_never_writes_through_a_symlinked_chain_tier_or_shot_folder(
        tmp_path, engine_shot, level):
    session = new_session(engine_shot, tmp_path / "cache")
    linked = {"chain": session.folder, "tier": os.path.dirname(session.folder),
              "shot": os.path.dirname(os.path.dirname(session.folder))}[level]
    decoy = tmp_path / "outside"
    decoy.mkdir()
    os.makedirs(os.path.dirname(linked), exist_ok=True)
    os.symlink(decoy, linked)
    with pytest.raises(OutputError) as error:
        session.ensure(1001)
    assert linked in str(error.value)
    assert os.listdir(decoy) == []


def test_the_engine_marks_its_cache_root(tmp_path, engine_shot):
    session = new_session(engine_shot, tmp_path / "cache")
    assert not os.path.exists(tmp_path / "cache")  # opening a session creates nothing
    session.ensure(1001)
    assert marked(tmp_path / "cache") == {"format": 1, "made_by": "vrmbg"}


def test_the_temp_sweep_removes_only_exact_temp_names(tmp_path):
    store = cache.ChainStore(str(tmp_path / "cache" / "sh010-aaaa0000" / "final" /
                                 "1111111111111111"))
    store.ensure_folders({"identity": {}})
    kept, swept = [], []
    for folder in (store.folder, store.matte_dir, store.state_dir):
        for name in ("x.vrmbg-tmp-keep.exr", ".x.vrmbg-tmp-keep.exr", "m.vrmbg-tmp-1-abcdef01.exr",
                     ".m.1001.vrmbg-tmp-12-abcdef0.exr"):
            path = os.path.join(folder, name)
            open(path, "w").close()
            kept.append(path)
        leftover = temp_path_for(os.path.join(folder, "matte.1001.exr"))
        open(leftover, "w").close()
        swept.append(leftover)
    assert store.sweep_temp_files() == 3
    assert all(os.path.isfile(path) for path in kept)
    assert not any(os.path.exists(path) for path in swept)


# --------------------------------------------------------------------------- case 7: roots


def test_the_file_system_root_and_home_are_refused_as_cache_roots(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for explicit in ("/", "//", "/tmp/..", str(home), str(home) + "/", "~"):
        with pytest.raises(UsageError) as error:
            cache.default_cache_root(explicit)
        assert "cache" in str(error.value)
    os.symlink("/", tmp_path / "to-root")
    with pytest.raises(UsageError):
        cache.default_cache_root(str(tmp_path / "to-root"))
    monkeypatch.setenv("VRMBG_CACHE", "/")
    with pytest.raises(UsageError):
        cache.default_cache_root()
    assert cache.default_cache_root(str(home / "vrmbg")) == str(home / "vrmbg")


@pytest.fixture
def mounted(tmp_path):
    """A small tmpfs (root only; skipped where mounting is not allowed), unmounted after."""
    with mounted_tmpfs(tmp_path / "volume", "1m") as mount:
        yield mount


def test_a_mounted_volume_is_a_cache_only_when_empty_or_vrmbg_s(mounted):
    assert cache.default_cache_root(str(mounted)) == str(mounted)  # a cache volume of its own
    (mounted / "project.txt").write_text("someone's")
    with pytest.raises(UsageError) as error:
        cache.default_cache_root(str(mounted))
    assert "mounted" in str(error.value) and "project.txt" in str(error.value)
    (mounted / MARKER).write_text(json.dumps({"format": 1, "made_by": "vrmbg"}))
    assert cache.default_cache_root(str(mounted)) == str(mounted)  # marked: vrmbg's


def test_cache_commands_refuse_the_file_system_root(capsys):
    # `ls` only: it reads, so this test cannot harm the machine even where the rule is gone
    code, _, err = cache_cli(capsys, "ls", "--cache-dir", "/")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "root" in err


@pytest.mark.parametrize("action", [("prune", "--max-size", "0"), ("clear", "--all")])
def test_cache_commands_refuse_the_home_folder(tmp_path, capsys, monkeypatch, action):
    home = tmp_path / "home"
    fake_chain(home, "sh010-aaaa0000", "1111111111111111")  # a cache's layout, even so
    before = files_below(home)
    monkeypatch.setenv("HOME", str(home))
    code, _, err = cache_cli(capsys, *action, "--cache-dir", str(home))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "home folder" in err
    assert files_below(home) == before


def test_a_render_into_the_home_folder_as_cache_creates_nothing(tmp_path, capsys, model,
                                                                monkeypatch):
    plates = make_render_plates(str(tmp_path / "plates"), [1001, 1002])
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    output = tmp_path / "m" / "sh010.####.exr"
    code, _, err = run_cli(render_args(plates, str(output), model, cache=str(home)), capsys)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "home" in err
    assert os.listdir(home) == [] and not os.path.exists(output.parent)


def test_a_session_refuses_the_file_system_root_before_creating_anything(tmp_path, engine_shot):
    with pytest.raises(UsageError):
        new_session(engine_shot, "/")


# --------------------------------------------------------------------------- case 16: clear --shot


def test_clearing_an_unknown_shot_names_it_and_lists_the_shots(tmp_path, capsys):
    fake_chain(tmp_path, "sh010-aaaa0000", "1111111111111111")
    fake_chain(tmp_path, "sh020-bbbb0000", "2222222222222222")
    code, out, err = cache_cli(capsys, "clear", "--shot", "nosuchshot",
                               "--cache-dir", str(tmp_path))
    assert code == 2, out
    errors = [line for line in err.splitlines() if line.startswith("vrmbg: error:")]
    assert len(errors) == 1 and "adopted" in err  # an older cache: adopted, then the error
    err = errors[0]
    assert "nosuchshot" in err and "sh010-aaaa0000" in err and "sh020-bbbb0000" in err
    assert len(os.listdir(tmp_path / "sh010-aaaa0000" / "final")) == 1
    code, out, err = cache_cli(capsys, "clear", "--shot", "nosuchshot", "--json",
                               "--cache-dir", str(tmp_path / "empty"))
    assert code == 2 and "no shots" in err


def test_clearing_an_unknown_chain_is_a_usage_error(tmp_path, capsys):
    fake_chain(tmp_path, "sh010-aaaa0000", "1111111111111111")
    code, _, err = cache_cli(capsys, "clear", "--chain", "ffff", "--cache-dir", str(tmp_path))
    assert code == 2 and "ffff" in err and "1111111111111111" in err


@pytest.mark.parametrize("level", ["matte", "chain"])
def test_a_render_with_every_frame_cached_links_nothing_through_a_symlink(tmp_path, model,
                                                                         capsys, level):
    """An alpha output's frames are hard-linked into the cache even when nothing is
    computed: a linked folder of the chain must stop the render before any link is made."""
    import glob
    import hashlib
    import shutil

    plates = make_render_plates(str(tmp_path / "plates"), range(1001, 1004))
    cache_dir = tmp_path / "cache"
    args = render_args(plates, str(tmp_path / "out" / "m.####.exr"), model, "--resolution", "64",
                    cache=str(cache_dir))
    assert main(args) == 0
    (chain,) = glob.glob(str(cache_dir / "*" / "final" / "*"))
    linked = os.path.join(chain, "matte") if level == "matte" else chain
    decoy = tmp_path / "decoy"
    shutil.move(linked, decoy)
    os.symlink(decoy, linked)

    def digest():
        return {name: hashlib.sha256((decoy / name if level == "matte" else
                                      decoy / "matte" / name).read_bytes()).hexdigest()
                for name in sorted(os.listdir(decoy if level == "matte" else decoy / "matte"))}

    before = digest()
    inodes = {p: os.stat(p).st_ino for p in glob.glob(str(decoy / "**" / "*.exr"),
                                                      recursive=True)}
    capsys.readouterr()
    assert main(args + ["--overwrite"]) == 5
    assert "symbolic link" in capsys.readouterr().err
    assert digest() == before
    assert {p: os.stat(p).st_ino for p in inodes} == inodes
