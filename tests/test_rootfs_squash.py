"""Squashing layers as a container runtime extracting them in order would."""

from __future__ import annotations

import io

from imagescan.rootfs.layer import index_layer
from imagescan.rootfs.model import EntryType, LayerIndex, RootFS, Skipped
from imagescan.rootfs.paths import lookup
from imagescan.rootfs.squash import HiddenPaths, LowerTree, squash
from tests.imagebuilder import Dir, File, Hardlink, Member, Opaque, Symlink, Whiteout, layer_tar


def layer(index: int, *members: Member) -> LayerIndex:
    return index_layer(io.BytesIO(layer_tar(list(members))), index, f"sha256:{index:064x}")


def squashed(*layers: list[Member]) -> RootFS:
    return squash([layer(i, *members) for i, members in enumerate(layers)])


def test_top_layer_wins_and_every_entry_remembers_its_layer() -> None:
    fs = squashed(
        [Dir("/etc"), File("/etc/a", b"old"), File("/etc/b", b"b")],
        [File("/etc/a", b"newer", mode=0o4755, uid=7)],
    )
    a, b = fs.entries["/etc/a"], fs.entries["/etc/b"]
    assert (a.layer, a.size, a.mode, a.uid) == (1, 5, 0o4755, 7)
    assert a.setid
    assert b.layer == 0
    assert fs.entries["/etc"].layer == 0
    assert fs.layer_ids == (f"sha256:{0:064x}", f"sha256:{1:064x}")


def test_layers_are_applied_in_index_order_whatever_the_sequence_order() -> None:
    lower = layer(0, File("/x", b"lower"))
    upper = layer(1, File("/x", b"upper!"))
    assert squash([upper, lower]).entries["/x"].size == 6


def test_whiteout_deletes_a_file_and_a_whole_directory() -> None:
    fs = squashed(
        [Dir("/a"), Dir("/a/b"), File("/a/b/c"), File("/a/keep"), File("/gone")],
        [Whiteout("/a/b"), Whiteout("/gone")],
    )
    assert set(fs.entries) == {"/a", "/a/keep"}


def test_whiteout_does_not_hide_files_of_its_own_layer() -> None:
    # OCI layer.md: files present in the same layer as a whiteout are not hidden by it.
    fs = squashed([File("/f", b"1")], [Whiteout("/f"), File("/f", b"22")])
    assert fs.entries["/f"].layer == 1
    assert fs.entries["/f"].size == 2


def test_opaque_directory_hides_lower_children_only() -> None:
    fs = squashed(
        [Dir("/d"), File("/d/old"), Dir("/d/sub"), File("/d/sub/x"), File("/other")],
        [Dir("/d"), Opaque("/d"), File("/d/new")],
    )
    assert set(fs.entries) == {"/d", "/d/new", "/other"}


def test_hardlink_within_a_layer_shares_the_file_and_its_id() -> None:
    fs = squashed([Dir("/bin"), File("/bin/a", b"data", mode=0o755), Hardlink("/bin/b", "/bin/a")])
    a, b = fs.entries["/bin/a"], fs.entries["/bin/b"]
    assert b.type is EntryType.FILE
    assert (b.path, b.size, b.mode) == ("/bin/b", 4, 0o755)
    assert a.file_id == b.file_id != 0


def test_hardlink_to_a_lower_layer_file_takes_its_content() -> None:
    fs = squashed([File("/a", b"lower")], [Hardlink("/b", "/a")])
    assert fs.entries["/b"].layer == 1
    assert fs.entries["/b"].size == 5
    assert fs.entries["/b"].file_id == fs.entries["/a"].file_id


def test_hardlink_survives_the_deletion_of_its_target() -> None:
    fs = squashed([File("/a", b"xyz"), Hardlink("/b", "/a")], [Whiteout("/a")])
    assert set(fs.entries) == {"/b"}
    assert fs.entries["/b"].size == 3


def test_hardlink_to_nothing_is_skipped() -> None:
    fs = squashed([Hardlink("/b", "/missing")])
    assert "/b" not in fs.entries
    assert [(s.path, s.layer) for s in fs.skipped] == [("/b", 0)]
    assert "does not exist" in fs.skipped[0].reason


def test_regular_files_get_distinct_ids() -> None:
    fs = squashed([File("/a"), File("/b")], [File("/c")])
    ids = [fs.entries[p].file_id for p in ("/a", "/b", "/c")]
    assert len(set(ids)) == 3
    assert 0 not in ids


def test_parent_symlink_of_a_lower_layer_is_followed() -> None:
    fs = squashed(
        [Dir("/usr"), Dir("/usr/lib"), Symlink("/lib", "usr/lib")],
        [File("/lib/x", b"x")],
    )
    assert fs.entries["/usr/lib/x"].layer == 1
    assert fs.entries["/usr/lib/x"].path == "/usr/lib/x"
    assert "/lib/x" not in fs.entries
    assert fs.entries["/lib"].type is EntryType.SYMLINK


def test_directory_member_replaces_a_symlink() -> None:
    # docker's UnpackLayer and containerd's Apply: RemoveAll unless both are directories.
    fs = squashed([Dir("/usr"), Dir("/usr/lib"), Symlink("/lib", "usr/lib")], [Dir("/lib")])
    assert fs.entries["/lib"].type is EntryType.DIR


def test_file_replacing_a_directory_removes_its_tree() -> None:
    fs = squashed([Dir("/d"), File("/d/x")], [File("/d", b"now a file")])
    assert set(fs.entries) == {"/d"}
    assert fs.entries["/d"].type is EntryType.FILE


def test_whiteout_through_a_symlinked_parent() -> None:
    fs = squashed(
        [Dir("/usr"), Dir("/usr/lib"), File("/usr/lib/x"), Symlink("/lib", "usr/lib")],
        [Whiteout("/lib/x")],
    )
    assert "/usr/lib/x" not in fs.entries


def test_missing_parent_directories_are_created() -> None:
    fs = squashed([File("/opt/app/bin/tool")])
    assert fs.entries["/opt/app"].type is EntryType.DIR
    assert lookup(fs, "/opt/app/bin/tool") is not None


def test_member_under_a_symlink_loop_is_skipped() -> None:
    fs = squashed([Symlink("/a", "b"), Symlink("/b", "a")], [File("/a/x")])
    assert [s.path for s in fs.skipped] == ["/a/x"]
    assert "too many levels" in fs.skipped[0].reason


def test_kept_files_follow_visibility_and_symlink_aliases() -> None:
    fs = squashed(
        [
            Dir("/etc"),
            File("/etc/ld.so.conf", b"include /etc/ld.so.conf.d/*.conf\n"),
            File("/etc/nsswitch.conf", b"old"),
            Dir("/usr"),
            Dir("/usr/lib"),
            File("/usr/lib/os-release", b"ID=debian\n"),
            Symlink("/etc/os-release", "../usr/lib/os-release"),
        ],
        [Whiteout("/etc/nsswitch.conf"), File("/etc/ld.so.conf", b"new\n")],
    )
    assert fs.kept["/etc/ld.so.conf"] == b"new\n"
    assert "/etc/nsswitch.conf" not in fs.kept
    assert fs.kept["/etc/os-release"] == b"ID=debian\n"


def test_hidden_paths_from_upper_layers() -> None:
    hidden = HiddenPaths()
    hidden.add(
        layer(
            2,
            File("/replaced"),
            Dir("/kept-dir"),
            Whiteout("/deleted-dir"),
            Opaque("/opaque"),
            Symlink("/was-dir", "elsewhere"),
            Hardlink("/link", "/link-target"),
        )
    )
    assert hidden.hidden("/replaced")
    assert hidden.hidden("/kept-dir")  # a directory replaces a lower regular file
    assert not hidden.hidden("/kept-dir/child")  # ...but not a lower directory's children
    assert hidden.hidden("/deleted-dir/deep/file")
    assert hidden.hidden("/opaque/file")
    assert not hidden.hidden("/opaque")
    assert hidden.hidden("/was-dir/file")
    assert not hidden.hidden("/link-target")  # an upper hard link needs its content
    assert not hidden.hidden("/elsewhere")


def test_opaque_root_hides_everything_below() -> None:
    hidden = HiddenPaths()
    hidden.add(layer(1, Opaque("/")))
    assert hidden.hidden("/x")


def test_skipped_files_that_an_upper_layer_hides_are_dropped() -> None:
    lower = LayerIndex(
        index=0,
        diff_id=None,
        entries=(),
        skipped=(Skipped("/gone", "bad", 0), Skipped("/stays", "bad", 0)),
    )
    upper = layer(1, Whiteout("/gone"))
    fs = squash([lower, upper])
    assert [s.path for s in fs.skipped] == ["/stays"]


def test_ld_so_conf_d_symlink_through_alternatives_is_readable_by_its_name() -> None:
    target = "/usr/lib/x86_64-linux-gnu/libfakeroot/fakeroot-sysv.conf"
    fs = squashed(
        [
            Dir("/etc"),
            Dir("/etc/ld.so.conf.d"),
            Dir("/etc/alternatives"),
            File(target, b"/usr/lib/x86_64-linux-gnu/libfakeroot\n"),
            Symlink("/etc/alternatives/libfakeroot.conf", target),
            Symlink("/etc/ld.so.conf.d/fakeroot.conf", "/etc/alternatives/libfakeroot.conf"),
        ]
    )
    assert fs.kept["/etc/ld.so.conf.d/fakeroot.conf"] == b"/usr/lib/x86_64-linux-gnu/libfakeroot\n"


def test_opaque_root_hides_every_lower_path() -> None:
    fs = squashed([Dir("/etc"), File("/etc/x"), File("/y")], [Opaque("/"), File("/z")])
    assert set(fs.entries) == {"/z"}


def _base() -> list[LayerIndex]:
    return [
        layer(
            0,
            Dir("/etc"),
            File("/etc/ld.so.conf", b"base\n"),
            Dir("/usr"),
            Dir("/usr/lib"),
            File("/usr/lib/libx.so", b"x"),
            Symlink("/lib", "usr/lib"),
            Dir("/opt"),
            File("/opt/a", b"a"),
            Hardlink("/opt/b", "/opt/a"),
            Symlink("/loop1", "loop2"),
            Symlink("/loop2", "loop1"),
        ),
        layer(1, File("/etc/second", b"2"), Symlink("/etc/os-release", "../usr/lib/os-release")),
    ]


def test_squashing_over_a_kept_lower_tree_gives_the_fresh_root_filesystem() -> None:
    """Images over the same lower layers (the same objects), squashed one after the other
    from the lower tree of the one before (issue 12): each top layer's whiteouts, opaque
    directories, replacements, hard links to lower files and skipped members land as on
    a fresh squash, and one image's top layer never shows in another's tree."""
    base = _base()
    tops = [
        [File("/etc/top", b"t")],
        [Whiteout("/usr/lib/libx.so"), File("/etc/ld.so.conf", b"top\n")],
        [Opaque("/etc"), File("/etc/only", b"o")],
        [File("/usr", b"a file where a directory was"), Hardlink("/opt/c", "/opt/a")],
        [File("/lib/liby.so", b"y"), File("/loop1/x"), File("/usr/lib/os-release", b"ID=x\n")],
        [File("/etc/top", b"t")],
    ]
    lower = LowerTree()
    made = []
    for members in tops:
        layers = [*base, layer(2, *members)]
        fs = squash(layers, lower)
        assert fs == squash(layers)
        made.append(fs)
    assert made[0] == made[-1] and "/etc/only" not in made[0].entries
    assert lower.layers == tuple(base)
    other = [layer(0, File("/other", b"o")), layer(1, File("/etc/second", b"2"))]
    layers = [*other, layer(2, File("/etc/top", b"t"))]
    assert squash(layers, lower) == squash(layers)  # other lower layers: built again
