"""The audit on a Dask cluster (`pip install 'imagescan[cluster]'`; issue 12).

One task per image, each `audit_image` on a worker. Placement: images are grouped by their
base layers (the diff_ids below the top one, read from each image's config before anything
is submitted), and each group is pinned to one worker with Dask's worker restrictions
(`workers=[address]`, `allow_other_workers=True`: a loose restriction, so that a task whose
worker died runs elsewhere). While there are more workers than groups, the largest group is
split, so that no worker idles; a group's base is then read once per worker it went to.
Groups go to workers by cost (their images, plus reading their base: the manifest's layer
sizes), and a worker runs its images group by group (task priorities), so that the carry
(checks.reuse) holds from one image to the next. The LocalCluster of `--workers` runs
without work stealing, which took single images of another worker's group, each reading
that group's base again; a scheduler of the user's may want the same
(`distributed.scheduler.work-stealing: false`).

Failures: an error imagescan knows (an unreadable image) is a result, not a failure. A task
that raises is run again once (`retries=1`); a worker that dies takes its task to another
worker (the scheduler's `allowed-failures`, set to 1 for the LocalCluster of `--workers`).
A task that fails twice is listed with its error and the audit goes on; `attempts` says
how many times a worker started each image (each start is logged to the scheduler as a
Dask event before the work begins: the scheduler's own count of suspicious tasks also
counts tasks that were only queued on the dead worker).

Every worker keeps one store per thread (a worker plugin), so that a group's base layers,
decoded once, serve the group's next images.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import dask
from distributed import Client, Future, LocalCluster, WorkerPlugin, get_worker

from imagescan.audit import AuditSettings, ImageResult, audit_image, sized_base_groups
from imagescan.checks.reuse import Carry
from imagescan.errors import ImagescanError, UsageError
from imagescan.heap import fix_mmap_threshold, release_free_memory
from imagescan.store import open_store
from imagescan.store.model import Store

EXTRA = "imagescan[cluster]"
PLUGIN = "imagescan-store"
RETRIES = 1  # a task that raises runs twice in all
MAX_REASON = 300  # characters of a failed start's error kept in the result's notes
# What reading a base costs, in images of a group: an image after the first of its base
# takes ~35 ms, inflating and walking a layer ~1 s per GB (benchmarks/README.md, issue 12).
BYTES_PER_IMAGE = 32 << 20


class StorePlugin(WorkerPlugin):
    """Opens the audit's store on a worker, one connection per worker thread."""

    name = PLUGIN

    def __init__(self, location: str | None) -> None:
        self.location = location  # all that is sent to the workers
        self._stores: dict[int, Store] = {}
        self._carries: dict[int, Carry] = {}  # a group's images run on one worker (place)
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"location": self.location}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["location"])  # type: ignore[misc]

    def store(self) -> Store | None:
        if self.location is None:
            return None
        with self._lock:
            key = threading.get_ident()
            if key not in self._stores:
                self._stores[key] = open_store(self.location)
            return self._stores[key]

    def carry(self) -> Carry:
        """This worker thread's carry of verdicts from its last image (checks.reuse)."""
        with self._lock:
            return self._carries.setdefault(threading.get_ident(), Carry())

    def teardown(self, worker: Any) -> None:
        with self._lock:
            for store in self._stores.values():
                store.close()
            self._stores.clear()
            self._carries.clear()


def audit_task(reference: str, position: int, settings: AuditSettings, topic: str) -> ImageResult:
    """What a worker runs for one image. Its start goes to the scheduler as an event first,
    so that a run cut short by the worker's death is still counted."""
    worker = get_worker()
    worker.log_event(topic, {"position": position})
    plugin = worker.plugins.get(PLUGIN)
    store = plugin.store() if isinstance(plugin, StorePlugin) else None
    carry = plugin.carry() if isinstance(plugin, StorePlugin) else None
    fix_mmap_threshold()  # imagescan.heap: a worker's peak stays one image's (issue 12)
    try:
        return audit_image(reference, position, settings, store, carry)
    except Exception as err:  # said to the scheduler too: the run again says why
        failed = " ".join(f"{type(err).__name__}: {err}".split())[:MAX_REASON]
        worker.log_event(topic, {"position": position, "failed": failed})
        raise
    finally:
        release_free_memory()


@contextmanager
def connect(scheduler: str | None, workers: int | None) -> Iterator[Client]:
    """A client of the cluster at `scheduler`, else of a LocalCluster of `workers`."""
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="30s")
        except (OSError, TimeoutError) as err:
            raise UsageError(f"--scheduler {scheduler}: cannot connect ({err})") from err
        with client:
            yield client
        return
    # No work stealing: an idle worker that takes an image of another worker's group reads
    # that group's base again (a 1 GB base: seconds), for an image of some 35 ms.
    config = {"distributed.scheduler.allowed-failures": RETRIES}
    config["distributed.scheduler.work-stealing"] = False
    with dask.config.set(config):
        cluster = LocalCluster(
            n_workers=workers or 1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
        with cluster, Client(cluster) as client:
            yield client


def audit_on_dask(
    images: Sequence[tuple[int, str]],
    settings: AuditSettings,
    client: Client,
    progress: Callable[[str], None] | None = None,
) -> list[ImageResult]:
    """Every image's result (exactly one each), computed by the cluster's workers."""
    client.register_plugin(StorePlugin(settings.store), name=PLUGIN)
    addresses = sorted(client.scheduler_info()["workers"])
    groups = list(sized_base_groups(images, settings.options.source).values())
    weights = [size / BYTES_PER_IMAGE for _, size in groups]
    placement = place([positions for positions, _ in groups], addresses, weights)
    run = uuid.uuid4().hex[:12]
    futures: dict[int, Future[Any]] = {}
    reference_of = dict(images)
    order = list(placement) or list(reference_of)  # a worker's images piece by piece
    for rank, position in enumerate(order):
        reference, where = reference_of[position], placement.get(position)
        futures[position] = client.submit(
            audit_task,
            reference,
            position,
            settings,
            f"imagescan-audit-{run}",
            key=f"imagescan-audit-{run}-{position}",
            workers=[where] if where else None,
            allow_other_workers=True,
            retries=RETRIES,
            pure=False,
            priority=-rank,
        )
    results = [_result(futures[p], ref, p) for p, ref in images]
    _tell(progress, f"{len(results)} images audited on {len(addresses)} workers")
    return _with_attempts(results, [e for _, e in client.get_events(f"imagescan-audit-{run}")])


def _with_attempts(
    results: Sequence[ImageResult], events: Sequence[Mapping[str, Any]]
) -> list[ImageResult]:
    """Each result with how many times a worker started its image and, for each start
    that raised, a note with what it raised (any other start but the last was cut short:
    its worker died, or the scheduler ran the image elsewhere)."""
    starts = Counter(e["position"] for e in events if "failed" not in e)
    failures: dict[int, list[str]] = {}
    for event in events:
        if "failed" in event:
            failures.setdefault(event["position"], []).append(f"a start failed: {event['failed']}")
    return [
        replace(
            r,
            attempts=max(starts[r.position], 1),
            notes=(*r.notes, *failures.get(r.position, ())),
        )
        for r in results
    ]


def _result(future: Future[Any], reference: str, position: int) -> ImageResult:
    try:
        result = future.result()
    except ImagescanError as err:
        return ImageResult(reference, error=err.message, position=position)
    except Exception as err:  # the task failed twice, or its workers died: listed, go on
        message = f"failed on the cluster: {type(err).__name__}: {err}"
        return ImageResult(reference, error=" ".join(message.split()), position=position)
    if not isinstance(result, ImageResult):
        return ImageResult(reference, error="the worker returned no result", position=position)
    return result


def place(
    groups: Sequence[Sequence[int]],
    workers: Sequence[str],
    weights: Sequence[float] | None = None,
) -> dict[int, str]:
    """Image position -> worker address, each worker's images piece by piece. Groups are
    split (largest first) while there are more workers than pieces, then the pieces go
    costliest first to the least loaded worker (longest-processing-time first), so that
    each piece's base is read by one worker. A piece costs its images plus its group's
    weight (reading its base, in images: every piece of a split group reads it)."""
    if not workers:
        return {}
    weight = list(weights) if weights is not None else [0.0] * len(groups)
    pieces = [(list(g), w) for g, w in zip(groups, weight, strict=True) if g]
    while len(pieces) < len(workers):
        pieces.sort(key=lambda p: len(p[0]), reverse=True)
        if not pieces or len(pieces[0][0]) < 2:
            break
        largest, cost = pieces.pop(0)
        half = len(largest) // 2
        pieces += [(largest[:half], cost), (largest[half:], cost)]
    load: Mapping[str, list[int]] = {w: [] for w in workers}
    spent = dict.fromkeys(workers, 0.0)
    for piece, cost in sorted(pieces, key=lambda p: len(p[0]) + p[1], reverse=True):
        target = min(workers, key=lambda w: spent[w])
        load[target].extend(piece)
        spent[target] += len(piece) + cost
    return {position: w for w, positions in load.items() for position in positions}


def _tell(progress: Callable[[str], None] | None, message: str) -> None:
    if progress is not None:
        progress(message)
