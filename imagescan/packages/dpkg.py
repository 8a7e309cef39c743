"""dpkg's database: /var/lib/dpkg/status, info/*.list, and distroless' status.d/.

The status file is deb822 paragraphs (deb-status(5)); a package is installed when its
`Status` ends in "installed" (dpkg's want/eflag/status triple). Distroless images have no
status file: one paragraph per package in status.d/NAME and its files in NAME.md5sums.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from imagescan.packages.found import Found, PackageFacts
from imagescan.packages.model import Manager, Package
from imagescan.rootfs.layer import DPKG_INFO, DPKG_LISTS_BUDGET, is_dpkg_list

STATUS = "/var/lib/dpkg/status"
STATUS_D = "/var/lib/dpkg/status.d/"


def paragraphs(text: str) -> Iterator[dict[str, str]]:
    """The deb822 paragraphs of `text`: field name -> value (continuation lines joined)."""
    fields: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, last = {}, ""
        elif line[0] in " \t":
            if last:
                fields[last] += "\n" + line.strip()
        elif ":" in line:
            last, _, value = line.partition(":")
            fields[last] = value.strip()
    if fields:
        yield fields


def _package(fields: Mapping[str, str], facts: PackageFacts) -> Package | None:
    if not fields.get("Package") or not fields.get("Version"):
        return None
    if not fields.get("Status", "install ok installed").endswith(" installed"):
        return None  # config-files, half-installed, not-installed: not in the image
    source = fields.get("Source", "").split(" ")[0] or None
    return facts.package(
        name=fields["Package"],
        version=fields["Version"],
        arch=fields.get("Architecture", ""),
        manager=Manager.DPKG,
        source=source,
    )


def read_dpkg(kept: Mapping[str, bytes], listed: set[str], facts: PackageFacts) -> Found:
    """The packages of the dpkg status file (with info/*.list) or of status.d/.

    `listed` is every info/*.list path in the image, kept or not: those not kept were over
    the keep budget, and the problems say so."""
    found = Found()
    if STATUS in kept:
        for fields in paragraphs(kept[STATUS].decode("utf-8", "replace")):
            package = _package(fields, facts)
            if package is not None:
                found.packages.append(package)
                found.add_files(package, _list(kept, package))
        _budget_problem(found, kept, listed)
    for path in sorted(p for p in kept if p.startswith(STATUS_D)):
        if not path.endswith(".md5sums"):
            _status_d(found, kept, path, facts)
    return found


def _list(kept: Mapping[str, bytes], package: Package) -> list[str]:
    """The paths of a package's file list: NAME:ARCH.list (Multi-Arch: same) or NAME.list."""
    for name in (f"{package.name}:{package.arch}", package.name):
        data = kept.get(f"{DPKG_INFO}{name}.list")
        if data is not None:
            text = data.decode("utf-8", "replace")
            return [line for line in text.splitlines() if line.startswith("/")]
    return []


def _budget_problem(found: Found, kept: Mapping[str, bytes], listed: set[str]) -> None:
    missing = sorted(path for path in listed if is_dpkg_list(path) and path not in kept)
    if missing:
        found.problems.append(
            f"dpkg file lists: {len(missing)} of {len(listed)} over the keep budget"
            f" ({DPKG_LISTS_BUDGET >> 20} MiB a layer), their packages' files show as"
            f" owned by no package (first: {missing[0]})"
        )


def _status_d(found: Found, kept: Mapping[str, bytes], path: str, facts: PackageFacts) -> None:
    # Distroless writes status.d/NAME (or NAME.status?) and status.d/NAME.md5sums, whose
    # lines are "MD5  relative/path".
    for fields in paragraphs(kept[path].decode("utf-8", "replace")):
        package = _package(fields, facts)
        if package is None:
            continue
        found.packages.append(package)
        sums = kept.get(f"{path}.md5sums") or kept.get(f"{STATUS_D}{package.name}.md5sums")
        if sums is not None:
            lines = sums.decode("utf-8", "replace").splitlines()
            found.add_files(package, ["/" + line[34:] for line in lines if len(line) > 34])
