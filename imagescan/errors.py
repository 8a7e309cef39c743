"""The one exception family of imagescan: "cannot continue", with a message for users.

Per-file trouble is never an exception that escapes a stage; it becomes a `Skipped` entry.
`cli` catches `ImagescanError` once, prints `message` on one line and exits 2.
"""

from __future__ import annotations


class ImagescanError(Exception):
    """Cannot continue; `message` is written for the user, on one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = " ".join(message.split())


class ReferenceError_(ImagescanError):
    """The image reference cannot be parsed or names nothing."""


class ImageReadError(ImagescanError):
    """The image exists but cannot be read: corrupt archive, bad digest, missing blob."""


class RegistryError(ImagescanError):
    """The registry refused or failed: authentication, 404, 5xx, connection closed."""


class EngineError(ImagescanError):
    """The Docker/Podman engine is unreachable or refused."""


class PlatformError(ImagescanError):
    """No manifest matches the requested platform, or the choice is ambiguous."""


class UsageError(ImagescanError):
    """Bad command-line usage."""


class MalformedElf(Exception):
    """One ELF file cannot be parsed; becomes a Skipped entry, never escapes a scan."""
