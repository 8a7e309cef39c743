"""musl's search-path inputs (ldso/dynlink.c `load_library`, `path_open`): where its path
file is, how it is split, and which names musl answers with the loader itself.

musl has no ld.so.cache, no hwcaps and no $LIB/$PLATFORM (LOADER.md 3.9).
"""

from __future__ import annotations

import posixpath

# Used when the path file does not exist (ENOENT); any other open error means no dirs.
MUSL_DEFAULT_PATH = ("/lib", "/usr/local/lib", "/usr/lib")
# load_library's `buf[2*NAME_MAX+2]`: path_open skips a "DIR/NAME" this long or longer.
NAME_MAX = 255
MUSL_PATH_BUF = 2 * NAME_MAX + 2
# load_library: "lib" + one of these (dot included) is the implementation itself.
_RESERVED = ("c.", "pthread.", "rt.", "m.", "dl.", "util.", "xnet.")


def musl_path_file(ldso_path: str, arch: str) -> str:
    """The path file musl's loader reads, e.g. /lib/ld-musl-x86_64.so.1 ->
    /etc/ld-musl-x86_64.path.

    The prefix is everything before the second-to-last '/' of the loader's own name (its
    PT_INTERP string, not resolved), so /usr/lib/ld-musl-ARCH.so.1 reads
    /usr/etc/ld-musl-ARCH.path; a relative loader name gives the empty prefix.
    """
    prefix_len = 0
    if ldso_path.startswith("/"):
        slashes = [i for i, c in enumerate(ldso_path) if c == "/"]
        prefix_len = slashes[-2] if len(slashes) >= 2 else 0
    return f"{ldso_path[:prefix_len]}/etc/ld-musl-{arch}.path"


def musl_sys_path(content: bytes | None) -> tuple[str, ...]:
    """The system directories from the path file's bytes (None = file missing).

    path_open skips runs of ':' and '\\n' and takes the text between them verbatim (no
    whitespace trimming); the text ends at the first NUL. An existing empty file means no
    system directories at all.
    """
    if content is None:
        return MUSL_DEFAULT_PATH
    text = content.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    return tuple(part for part in text.replace("\n", ":").split(":") if part)


def is_musl_interpreter(path: str) -> bool:
    """Whether a PT_INTERP names musl's loader (ld-musl-ARCH.so.1)."""
    name = posixpath.basename(path)
    return name.startswith("ld-musl-") and name.endswith(".so.1")


def musl_libc_alias(name: str) -> bool:
    """Whether musl answers a NEEDED `name` with the loader itself (libc.so.6, libm.so.6,
    libpthread.so.0, libdl.so.2, ...): "lib" followed by a reserved prefix, dot included."""
    return name.startswith("lib") and name[3:].startswith(_RESERVED)
