"""Policy path globs: * and ? within a component, ** across, unanchored patterns anywhere."""

from __future__ import annotations

import pytest

from imagescan.globs import glob_problem, path_matches


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/opt/**", "/opt", True),
        ("/opt/**", "/opt/app/lib/x.so", True),
        ("/opt/**", "/optional/x", False),
        ("/usr/lib/*.so", "/usr/lib/x.so", True),
        ("/usr/lib/*.so", "/usr/lib/sub/x.so", False),
        ("/usr/**/*.so", "/usr/x.so", True),
        ("/usr/**/*.so", "/usr/lib/a/b/x.so", True),
        ("*.so", "/usr/lib/x.so", True),  # unanchored: at any depth
        ("lib/*.so", "/usr/lib/x.so", True),
        ("lib/*.so", "/usr/xlib/x.so", False),
        ("/bin/?s", "/bin/ls", True),
        ("/bin/?s", "/bin/lss", False),
        ("/lib/libc.so.[0-9]", "/lib/libc.so.6", True),
        ("/lib/libc.so.[!6]", "/lib/libc.so.6", False),
        ("/a/[x", "/a/[x", True),  # an unclosed bracket is literal
        ("/a+b/(c)", "/a+b/(c)", True),  # regex characters are literal
        ("/opt/app/", "/opt/app", True),
    ],
)
def test_glob_matching(pattern: str, path: str, matches: bool) -> None:
    assert path_matches(path, (pattern,)) is matches


def test_glob_problems() -> None:
    assert glob_problem("/opt/**") is None
    assert glob_problem("  ") == "an empty glob matches nothing"
    assert glob_problem("/a\0b") == "a glob cannot contain NUL"
    assert not path_matches("/x", ())
