"""Strings from an image or a registry, made safe for a terminal (issue 15, terminal safety).

File names, symlink targets, DT_NEEDED and PT_INTERP strings, LD_PRELOAD values and registry
reason phrases are chosen by whoever built the image or runs the registry. Written raw, an
ESC starts a CSI or OSC sequence (window title, clipboard write), a CR rewrites the line.
Each control character becomes visible (`\\x1b`, `\\r`), as `ls -b` would show it; undecodable
bytes (kept by paths as surrogates) show as the byte they were. Machine formats (JSON, SARIF,
JUnit, Markdown) keep the exact string and do their own quoting.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls (a terminal may read U+009B as CSI), lone surrogates, and the
# bidirectional overrides that can make a line read differently from its bytes.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape of one undecodable byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def display(text: str) -> str:
    """`text` with every character a terminal would act on written as a visible escape."""
    return _UNSAFE.sub(_visible, text)
