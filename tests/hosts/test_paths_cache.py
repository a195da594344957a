"""Where a matte's cache is in a host (one rule for Nuke and Blender), and the frames of a
file never saved kept when it is first saved (plugin/paths.py)."""

from __future__ import annotations

import errno
import os
import shutil

import pytest

from vrmbg.plugin import fs, paths
from vrmbg.plugin.paths import adopt_unsaved_cache, host_cache_root

USER = {"HOME": "/home/ann", "XDG_CACHE_HOME": "/home/ann/.cache"}


@pytest.mark.parametrize("setting, saved, env, root", [
    ("/fast/cache", "/shows/x/comp.nk", {"VRMBG_CACHE": "/env"}, "/fast/cache"),
    ("", "/shows/x/comp.nk", {"VRMBG_CACHE": "/env/cache"}, "/env/cache"),
    ("", "/shows/x/comp.nk", {}, "/shows/x/vrmbg-cache"),
    ("", "/shows/x/lighting.blend", {}, "/shows/x/vrmbg-cache"),
    ("", "", {}, "/home/ann/.cache/vrmbg"),  # never saved: the user cache
    ("  ", "", {"VRMBG_CACHE": ""}, "/home/ann/.cache/vrmbg"),
])
def test_one_cache_rule_for_both_hosts(setting, saved, env, root):
    assert host_cache_root(setting, saved, dict(USER, **env)) == root


def test_the_rule_reads_the_environment_when_none_is_given(monkeypatch):
    monkeypatch.setenv("VRMBG_CACHE", "/from/env")
    assert host_cache_root("", "/shows/x/comp.nk") == "/from/env"


def shot(root, name="plate-0a1b2c3d", chain="5c48d6cab6dba4a5", frames=(1001, 1002)):
    """A shot folder laid out as the engine lays it out, with a few frames."""
    chain_dir = os.path.join(str(root), name, "final", chain)
    for sub in ("matte", "state"):
        os.makedirs(os.path.join(chain_dir, sub), exist_ok=True)
    with open(os.path.join(str(root), name, "shot.json"), "w") as handle:
        handle.write('{"plate": "/p/plate.####.exr"}')
    open(os.path.join(chain_dir, "chain.lock"), "w").close()
    for frame in frames:
        with open(os.path.join(chain_dir, "matte", f"plate.{frame}.exr"), "wb") as handle:
            handle.write(bytes([frame % 256]) * 1000)
        with open(os.path.join(chain_dir, "state", f"{frame}_1001_ab.npy"), "wb") as handle:
            handle.write(b"state" * 100)
    return os.path.join(str(root), name)


def files(folder):
    return sorted(os.path.relpath(os.path.join(where, name), folder)
                  for where, _, names in os.walk(folder) for name in names)


def test_a_first_save_moves_the_shots_frames_beside_the_file(tmp_path):
    user, saved = tmp_path / "user", tmp_path / "shows" / "vrmbg-cache"
    before = files(shot(user))
    shot(user, "other-11111111")  # another file's shot: not named, not moved
    assert adopt_unsaved_cache(str(user), str(saved), ["plate-0a1b2c3d"]) == ["plate-0a1b2c3d"]
    assert files(str(saved / "plate-0a1b2c3d")) == before
    assert not (user / "plate-0a1b2c3d").exists() and (user / "other-11111111").is_dir()
    assert adopt_unsaved_cache(str(user), str(saved), ["plate-0a1b2c3d"]) == []  # moved once


def test_a_first_save_moves_its_own_chain_and_leaves_the_shots_other_chains(tmp_path):
    """Another unsaved script, or a command-line render, using the user cache keeps its own
    chain of the same shot where it is."""
    user, saved = tmp_path / "user", tmp_path / "shows" / "vrmbg-cache"
    folder = shot(user)
    mine = os.path.join("plate-0a1b2c3d", "final", "5c48d6cab6dba4a5")
    theirs = os.path.join(folder, "final", "fedcba9876543210")
    shutil.copytree(os.path.join(folder, "final", "5c48d6cab6dba4a5"), theirs)
    before = files(os.path.join(str(user), mine))
    assert adopt_unsaved_cache(str(user), str(saved), [mine]) == [mine]
    assert files(str(saved / mine)) == before and not os.path.exists(os.path.join(str(user), mine))
    assert files(theirs) == before  # the other chain, untouched


def test_across_devices_the_frames_are_copied_verified_then_removed(tmp_path, monkeypatch):
    user, saved = tmp_path / "user", tmp_path / "saved"
    original = shot(user)
    with open(os.path.join(original, "final", "5c48d6cab6dba4a5", "matte", "plate.1001.exr"),
              "rb") as handle:
        first = handle.read()
    real_rename = fs.rename

    def other_device(source, target):
        if source == original:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_rename(source, target)

    monkeypatch.setattr(fs, "rename", other_device)
    assert adopt_unsaved_cache(str(user), str(saved), ["plate-0a1b2c3d"]) == ["plate-0a1b2c3d"]
    moved = saved / "plate-0a1b2c3d" / "final" / "5c48d6cab6dba4a5" / "matte" / "plate.1001.exr"
    assert moved.read_bytes() == first and not os.path.exists(original)
    assert [n for n in os.listdir(str(saved)) if n.startswith(".")] == []  # no temp left


def test_a_copy_that_differs_keeps_the_original(tmp_path, monkeypatch):
    user, saved = tmp_path / "user", tmp_path / "saved"
    original = shot(user)
    monkeypatch.setattr(fs, "rename", _no_rename_across)
    monkeypatch.setattr(paths.filecmp, "cmp", lambda a, b, shallow=True: False)
    assert adopt_unsaved_cache(str(user), str(saved), ["plate-0a1b2c3d"]) == []
    assert len(files(original)) == 6 and not (saved / "plate-0a1b2c3d").exists()
    assert [n for n in os.listdir(str(saved)) if n.startswith(".")] == []


def _no_rename_across(source, target):
    raise OSError(errno.EXDEV, "Invalid cross-device link")


def test_nothing_is_overwritten_nor_moved_out_of_or_through_a_link(tmp_path):
    user, saved = tmp_path / "user", tmp_path / "saved"
    shot(user)
    kept = shot(saved, frames=(1001,))
    elsewhere = shot(tmp_path / "elsewhere", "linked-22222222")
    os.symlink(elsewhere, str(user / "linked-22222222"))
    (tmp_path / "secret").mkdir()
    names = ["plate-0a1b2c3d", "linked-22222222", "../secret", str(tmp_path / "secret"), "",
             ".", "plate-0a1b2c3d/../../secret"]
    assert adopt_unsaved_cache(str(user), str(saved), names) == []
    assert len(files(kept)) == 4 and len(files(str(user / "plate-0a1b2c3d"))) == 6
    assert os.path.isdir(elsewhere) and (tmp_path / "secret").is_dir()


def test_a_shot_being_computed_stays_where_it_is(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    user, saved = tmp_path / "user", tmp_path / "saved"
    lock = os.path.join(shot(user), "final", "5c48d6cab6dba4a5", "chain.lock")
    with open(lock) as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # a render computes it
        assert adopt_unsaved_cache(str(user), str(saved), ["plate-0a1b2c3d"]) == []
    assert adopt_unsaved_cache(str(user), str(saved), ["plate-0a1b2c3d"]) == ["plate-0a1b2c3d"]


def test_a_saved_cache_that_is_the_user_cache_or_no_cache_moves_nothing(tmp_path, monkeypatch):
    user = tmp_path / "user"
    shot(user)
    assert adopt_unsaved_cache(str(user), str(user), ["plate-0a1b2c3d"]) == []
    monkeypatch.setenv("HOME", str(tmp_path))
    assert adopt_unsaved_cache(str(user), str(tmp_path), ["plate-0a1b2c3d"]) == []  # home
    assert (user / "plate-0a1b2c3d").is_dir()
