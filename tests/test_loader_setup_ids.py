"""imagescan.loader.setup run_ids: the image's `User` as ids, on hostile input (issue 15)."""

from __future__ import annotations

import pytest

from imagescan.loader.setup import run_ids
from imagescan.rootfs.model import RootFS


def rootfs(passwd: str) -> RootFS:
    return RootFS(entries={}, kept={"/etc/passwd": passwd.encode()})


@pytest.mark.parametrize(
    ("user", "passwd", "expected"),
    [
        ("²", "", (65534, 65534)),  # not ASCII decimal: a name passwd does not list
        ("app", "app:x:¹:²::/:/bin/sh\n", (65534, 65534)),  # the entry's ids are not numbers
        ("app", "app:x:1000:²::/:/bin/sh\n", (1000, 0)),
        ("0:²", "", (0, 0)),  # a group name: the user's own gid, as before
        ("1000:50", "", (1000, 50)),
        ("app", "app:x:1000:1001::/:/bin/sh\n", (1000, 1001)),
    ],
)
def test_ids_are_ascii_decimal_only(user: str, passwd: str, expected: tuple[int, int]) -> None:
    """Unicode digits ("²", "¹") pass str.isdigit() but not int(): once an internal error."""
    assert run_ids(user, rootfs(passwd)) == expected
