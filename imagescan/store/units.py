"""`--older-than 30d` and `--max-size 5G`, as `imagescan cache prune` takes them."""

from __future__ import annotations

import re

from imagescan.errors import UsageError

_AGE = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SIZE = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_age(text: str) -> float:
    """Seconds in `30d`, `12h`, `90m`, `45s`, `2w`."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw])", text.strip().lower())
    if match is None:
        raise UsageError(f"--older-than {text}: expected a number and s, m, h, d or w (30d)")
    return float(match[1]) * _AGE[match[2]]


def parse_size(text: str) -> int:
    """Bytes in `5G`, `500M`, `64k`, `1000` (powers of 1024; a trailing B or iB is fine)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?", text.strip().lower())
    if match is None:
        raise UsageError(f"--max-size {text}: expected a number and K, M, G or T (5G)")
    return int(float(match[1]) * _SIZE[match[2]])
