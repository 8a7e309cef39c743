"""A nightly audit of a fleet (issue 12): 60 images over three shared base layer sets.

Usage: python benchmarks/audit.py [--images 60] [--big-mb 1024] [--work DIR] [--profile FILE]

Builds, with the tests' image builder, one OCI layout of IMAGES images sharing three bases:
the corpus `deb12-base` layer (Debian 12 minbase), that plus a Python-sized layer (this
host's python3 and its standard library), and that plus a synthetic BIG-MB layer (data
files); each image adds a small top layer of its own (a program, some with one that cannot
start). Then prints, in one run:

- the floor: reading only the unique layers once (inflate + walk every tar header);
- the same floor with the two digests a trustworthy read needs: each blob's SHA-256
  checked and each layer's diff_id hashed (the store's key);
- `audit` with a cold store (every unique layer read once, facts stored), and its ratio to
  the floor (target <= 1.3x);
- `audit` with a warm store (the same images again: results of unchanged digests reused;
  target all of them <= 5 s);
- `audit` on a LocalCluster of 2 Dask workers (cold store), for half the images and for
  all, with each worker's peak RSS (target: flat in the number of images).

The load average is printed before and after: the figures mean little on a busy machine.
A `--work` directory that already holds a built fleet (its oci/index.json) is used as it
is (its stores are emptied first: the cold audit must be cold); `--profile FILE` writes a
cProfile of the cold audit (pstats format) and prints its top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from imagescan.audit import AuditSettings, audit_images, record_run  # noqa: E402
from imagescan.image.compression import DigestVerifyingReader, open_decompressed  # noqa: E402
from imagescan.parallel import default_jobs  # noqa: E402
from imagescan.policy.load import load_policy  # noqa: E402
from imagescan.rootfs.tarstream import TarStream  # noqa: E402
from imagescan.scan import ScanOptions  # noqa: E402
from tests import imagebuilder as ib  # noqa: E402
from tests.fleet_support import programs  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus" / "oci"
CHUNK = 8 << 20


class Layout:
    """An OCI layout written blob by blob (each shared layer once, not once per image)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs" / "sha256"
        self.blobs.mkdir(parents=True)
        self.manifests: list[dict[str, Any]] = []

    def add_blob(self, data: bytes, media_type: str) -> dict[str, Any]:
        digest = ib.sha256(data)
        (self.blobs / digest.split(":")[1]).write_bytes(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def layer(self, members: list[Any], compression: str = "zstd") -> tuple[dict[str, Any], str]:
        raw = ib.layer_tar(members)
        diff_id = ib.sha256(raw)
        return self.add_blob(ib.compress(raw, compression), ib.MT_LAYER[compression]), diff_id

    def image(self, tag: str, layers: list[tuple[dict[str, Any], str]]) -> None:
        spec = ib.ImageSpec([])
        config = ib.config_json(spec, [d for _, d in layers])
        config_desc = self.add_blob(json.dumps(config).encode(), ib.MT_OCI_CONFIG)
        manifest = {
            "schemaVersion": 2,
            "mediaType": ib.MT_OCI_MANIFEST,
            "config": config_desc,
            "layers": [desc for desc, _ in layers],
        }
        desc = self.add_blob(json.dumps(manifest).encode(), ib.MT_OCI_MANIFEST)
        self.manifests.append({**desc, "annotations": {ib.REF_NAME: tag}})

    def close(self) -> None:
        (self.root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        index = {"schemaVersion": 2, "mediaType": ib.MT_OCI_INDEX, "manifests": self.manifests}
        (self.root / "index.json").write_text(json.dumps(index))


def corpus_base(layout: Layout) -> tuple[dict[str, Any], str]:
    """The corpus deb12-base layer, copied as it is (gzip), with its diff_id."""
    index = json.loads((CORPUS / "index.json").read_text())
    entry = next(m for m in index["manifests"] if m["annotations"][ib.REF_NAME] == "deb12-base")
    manifest = json.loads((CORPUS / "blobs/sha256" / entry["digest"][7:]).read_text())
    config = json.loads((CORPUS / "blobs/sha256" / manifest["config"]["digest"][7:]).read_text())
    desc = manifest["layers"][0]
    shutil.copyfile(CORPUS / "blobs/sha256" / desc["digest"][7:], layout.blobs / desc["digest"][7:])
    return desc, config["rootfs"]["diff_ids"][0]


def python_layer() -> list[Any]:
    """This host's python3 and its standard library (extension modules are ELF files)."""
    paths = [
        str(p)
        for p in Path("/usr/lib/python3.11").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    return ib.host_files(["/usr/bin/python3.11", *paths], follow=True)


def big_layer(megabytes: int) -> list[Any]:
    """Data files of random bytes (incompressible, like model weights), 8 MiB each."""
    count = max(1, megabytes * (1 << 20) // CHUNK)
    return [ib.File(f"/opt/big/part-{i:04d}.bin", os.urandom(CHUNK)) for i in range(count)]


def build(work: Path, images: int, big_mb: int) -> tuple[Path, list[str], list[Path]]:
    """The layout, the references, and the unique layer blobs (for the floor)."""
    layout = Layout(work / "oci")
    elves = programs(work / "build")
    deb = corpus_base(layout)
    python = layout.layer(python_layer())
    big = layout.layer(big_layer(big_mb))
    bases = [[deb], [deb, python], [deb, big]]
    refs = []
    for i in range(images):
        top = [
            ib.File(f"/etc/image-{i}", f"{i}\n".encode()),
            ib.File("/usr/local/bin/hello", elves["hello"], 0o755),
        ]
        if i % 7 == 3:
            top.append(ib.File("/usr/local/bin/needs-libver", elves["needs-libver"], 0o755))
        layout.image(f"img-{i}", [*bases[i % 3], layout.layer(top)])
        refs.append(f"oci-dir:{layout.root}:img-{i}")
    layout.close()
    blobs = sorted(
        {
            layout.blobs / d["digest"][7:]
            for m in layout.manifests
            for d in _manifest(layout, m)["layers"]
        }
    )
    return layout.root, refs, blobs


def _manifest(layout: Layout, desc: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads((layout.blobs / desc["digest"][7:]).read_text()))


def built(work: Path) -> tuple[Path, list[str], list[Path]] | None:
    """The fleet an earlier run built in `work`, read back from its index, if any."""
    root = work / "oci"
    if not (root / "index.json").is_file():
        return None
    index = json.loads((root / "index.json").read_text())
    blobs = root / "blobs" / "sha256"
    refs: list[str] = []
    layers: set[Path] = set()
    for desc in index["manifests"]:
        refs.append(f"oci-dir:{root}:{desc['annotations'][ib.REF_NAME]}")
        manifest = json.loads((blobs / desc["digest"][7:]).read_text())
        layers.update(blobs / layer["digest"][7:] for layer in manifest["layers"])
    return root, refs, sorted(layers)


def floor(blobs: list[Path]) -> str:
    """Inflate every unique layer once and walk its tar headers."""
    members = 0
    for path in blobs:
        with closing(path.open("rb")) as blob:
            for _ in TarStream(open_decompressed(blob).read, 1 << 40).members():
                members += 1
    return f"{len(blobs)} unique layers, {members} members"


def verified_floor(blobs: list[Path]) -> str:
    """The floor plus the two digests a trustworthy read of a layer needs: the blob's
    SHA-256 checked against its name (the manifest's digest) and the diff_id hashed (the
    store's key, checked against the config). SHA-256 runs at ~1 GB/s on one core here."""
    members = 0
    for path in blobs:
        with closing(path.open("rb")) as raw:
            verified = DigestVerifyingReader(raw, "sha256:" + path.name, path.name)
            stream = open_decompressed(verified)
            diff_id = hashlib.sha256()

            def read(size: int, stream: BinaryIO = stream, diff_id: Any = diff_id) -> bytes:
                data = stream.read(size)
                diff_id.update(data)
                return data

            for _ in TarStream(read, 1 << 40).members():
                members += 1
            while read(CHUNK):
                pass
            stream.drain()  # the blob's digest is checked at its end
    return f"{len(blobs)} unique layers, {members} members, digests checked"


def timed(label: str, work: Callable[[], str]) -> float:
    start = time.perf_counter()
    what = work()
    seconds = time.perf_counter() - start
    print(f"{label:<40} {seconds:8.2f} s   {what}", flush=True)
    return seconds


def local_audit(refs: list[str], store: Path, profile: Path | None = None) -> str:
    # As `imagescan audit` runs by default: --jobs is the machine's cores
    options = ScanOptions(jobs=int(os.environ.get("AUDIT_JOBS", default_jobs())))
    settings = AuditSettings(options, load_policy("default"), date.today(), str(store))
    profiler = cProfile.Profile() if profile is not None else None
    if profiler is not None:
        profiler.enable()
    results = audit_images(list(enumerate(refs)), settings)
    if profiler is not None and profile is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    record_run(results, str(store), time.time())  # as `imagescan audit --store` does
    broken = sum(1 for r in results if r.broken)
    reused = sum(1 for r in results if r.reused)
    errors = [r.error for r in results if r.error]
    assert not errors, errors
    return f"{len(results)} images, {broken} broken, {reused} reused"


def peak_rss_mib() -> int:
    """This process's own peak RSS (VmHWM). Not getrusage's ru_maxrss: that one keeps the
    peak of the process a worker was forked from (this benchmark, which built a big layer)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) >> 10
    raise RuntimeError("no VmHWM in /proc/self/status")


def dask_audit(refs: list[str], store: Path, peaks: list[int]) -> str:
    from imagescan.cluster import audit_on_dask, connect

    settings = AuditSettings(ScanOptions(), load_policy("default"), date.today(), str(store))
    with connect(None, 2) as client:
        results = audit_on_dask(list(enumerate(refs)), settings, client)
        rss = client.run(peak_rss_mib)
        pids = client.run(os.getpid)
    assert len(set(pids.values())) == 2  # two worker processes, measured each in itself
    peaks[:] = sorted(int(v) for v in rss.values())
    assert not [r.error for r in results if r.error]
    return f"{len(results)} images, peak RSS per worker {', '.join(f'{p} MiB' for p in peaks)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--big-mb", type=int, default=1024)
    parser.add_argument("--work", type=Path)
    parser.add_argument("--profile", type=Path, help="cProfile the cold audit into this file")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="imagescan-bench-audit-"))
    print(f"load average before: {os.getloadavg()}, {os.cpu_count()} cores")
    try:
        start = time.perf_counter()
        fleet = built(work)
        _, refs, blobs = fleet or build(work, args.images, args.big_mb)
        what = "found" if fleet else "built"
        print(f"{what} {len(refs)} images in {time.perf_counter() - start:.1f} s")
        for store in ("s1", "s2", "s3"):
            shutil.rmtree(work / store, ignore_errors=True)
        base = timed("floor (unique layers read once)", lambda: floor(blobs))
        checked = timed("floor with blob digest and diff_id", lambda: verified_floor(blobs))
        cold = timed("audit, cold store", lambda: local_audit(refs, work / "s1", args.profile))
        print(f"{'':<40} {cold / base:8.2f} x the floor (target <= 1.3)")
        print(f"{'':<40} {cold / checked:8.2f} x the floor with digests")
        if args.profile is not None:
            pstats.Stats(str(args.profile)).sort_stats("cumulative").print_stats(25)
        timed("audit, warm store (target <= 5 s)", lambda: local_audit(refs, work / "s1"))
        half, full = [0], [0]
        timed(
            f"dask, 2 workers, {len(refs) // 2} images",
            lambda: dask_audit(refs[: len(refs) // 2], work / "s2", half),
        )
        timed(f"dask, 2 workers, {len(refs)} images", lambda: dask_audit(refs, work / "s3", full))
        print(
            f"peak RSS per worker: {max(half)} MiB at {len(refs) // 2} images, "
            f"{max(full)} MiB at {len(refs)} (target: flat)"
        )
    finally:
        print(f"load average after: {os.getloadavg()}")
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
