"""Symlink resolution inside the image root, over entries only."""

from __future__ import annotations

from imagescan.rootfs.model import Entry, EntryType, RootFS, children_index
from imagescan.rootfs.paths import (
    ELOOP,
    ENOTDIR,
    MAX_SYMLINK_HOPS,
    Resolution,
    exists_dir,
    listdir,
    lookup,
    resolve,
    walk,
)


def d(path: str) -> Entry:
    return Entry(path=path, type=EntryType.DIR, layer=0)


def f(path: str) -> Entry:
    return Entry(path=path, type=EntryType.FILE, layer=0, size=1)


def s(path: str, target: str) -> Entry:
    return Entry(path=path, type=EntryType.SYMLINK, layer=0, link_target=target)


def rootfs(*entries: Entry) -> RootFS:
    return RootFS(entries={entry.path: entry for entry in entries}, kept={})


MERGED_USR = rootfs(
    d("/usr"),
    d("/usr/lib"),
    d("/usr/lib/x86_64-linux-gnu"),
    f("/usr/lib/x86_64-linux-gnu/libc.so.6"),
    s("/usr/lib/x86_64-linux-gnu/libc.so", "libc.so.6"),
    s("/lib", "usr/lib"),
    s("/lib64", "/usr/lib"),
    d("/etc"),
    s("/etc/os-release", "../usr/lib/os-release"),
    f("/usr/lib/os-release"),
)


def test_relative_symlink_in_parent_is_followed() -> None:
    result = resolve(MERGED_USR.entries, "/lib/x86_64-linux-gnu/libc.so.6")
    assert result.path == "/usr/lib/x86_64-linux-gnu/libc.so.6"
    assert result.hops == 1


def test_absolute_target_restarts_at_the_image_root() -> None:
    assert resolve(MERGED_USR.entries, "/lib64/os-release").path == "/usr/lib/os-release"


def test_last_symlink_followed_or_not() -> None:
    path = "/lib/x86_64-linux-gnu/libc.so"
    assert resolve(MERGED_USR.entries, path).path == "/usr/lib/x86_64-linux-gnu/libc.so.6"
    unfollowed = resolve(MERGED_USR.entries, path, follow_last=False)
    assert unfollowed.path == "/usr/lib/x86_64-linux-gnu/libc.so"


def test_dotdot_is_clamped_at_the_root() -> None:
    fs = rootfs(d("/a"), s("/a/up", "../../../../../usr/lib"), d("/usr"), d("/usr/lib"))
    assert resolve(fs.entries, "/a/up").path == "/usr/lib"
    assert resolve(fs.entries, "/../../usr/./lib/").path == "/usr/lib"


def test_symlink_pointing_outside_the_root_stays_inside() -> None:
    fs = rootfs(d("/etc"), f("/etc/passwd"), s("/escape", "../../../../etc/passwd"))
    assert lookup(fs, "/escape") == fs.entries["/etc/passwd"]


def test_missing_path_resolves_to_none_without_error() -> None:
    result = resolve(MERGED_USR.entries, "/lib/nope.so")
    assert (result.path, result.error) == (None, None)
    assert lookup(MERGED_USR, "/lib/nope.so") is None


def test_symlink_loop_is_reported() -> None:
    fs = rootfs(s("/a", "b"), s("/b", "a"))
    result = resolve(fs.entries, "/a/x")
    assert result.path is None
    assert result.error == ELOOP
    assert result.hops == MAX_SYMLINK_HOPS + 1


def test_forty_hops_resolve_and_forty_one_do_not() -> None:
    chain = [s(f"/l{i}", f"/l{i + 1}") for i in range(41)] + [f("/l41")]
    fs = rootfs(*chain)
    assert resolve(fs.entries, "/l1").path == "/l41"  # 40 links
    assert resolve(fs.entries, "/l0").error == ELOOP  # 41 links


def test_file_used_as_directory_is_not_a_directory() -> None:
    result = resolve(MERGED_USR.entries, "/usr/lib/os-release/x")
    assert (result.path, result.error) == (None, ENOTDIR)


def test_walk_continues_lexically_past_missing_components() -> None:
    result = walk(MERGED_USR.entries, "/lib/new/dir/../x")
    assert result.missing
    assert result.path == "/usr/lib/new/x"


def test_lookup_of_the_root_is_a_directory() -> None:
    assert exists_dir(MERGED_USR, "/")
    assert exists_dir(MERGED_USR, "/lib")
    assert not exists_dir(MERGED_USR, "/etc/os-release")
    assert not exists_dir(MERGED_USR, "/nope")


def test_listdir_follows_directory_symlinks_and_sorts() -> None:
    assert listdir(MERGED_USR, "/lib/x86_64-linux-gnu") == ["libc.so", "libc.so.6"]
    assert listdir(MERGED_USR, "/") == ["etc", "lib", "lib64", "usr"]
    assert listdir(MERGED_USR, "/nope") == []
    assert listdir(MERGED_USR, "/usr/lib/os-release") == []


def test_children_index_groups_by_parent() -> None:
    index = children_index(MERGED_USR.entries)
    assert index["/usr"] == ("lib",)
    assert index["/etc"] == ("os-release",)


def test_empty_symlink_leads_nowhere() -> None:
    fs = rootfs(d("/a"), s("/a/empty", ""))
    assert resolve(fs.entries, "/a/empty") == Resolution(None, None, 1)
    assert lookup(fs, "/a/empty/x") is None
    assert resolve(fs.entries, "/a/empty", follow_last=False).path == "/a/empty"
