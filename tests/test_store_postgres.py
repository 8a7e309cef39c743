"""The PostgreSQL store on a real server (initdb + pg_ctl on a temp dir, unix socket only):
the same audit gives the same results as on SQLite; the schema is migrated once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from imagescan.audit import AuditSettings, audit_dict, audit_images, record_run
from imagescan.errors import UsageError
from imagescan.policy.load import load_policy
from imagescan.scan import ScanOptions
from imagescan.store import open_store
from tests.fleet_support import Fleet, build_fleet, postgres_bin, running_postgres

pytestmark = pytest.mark.skipif(
    postgres_bin("initdb") is None, reason="needs Debian's postgresql package"
)


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with running_postgres() as url:
        yield url


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    return build_fleet(tmp_path_factory.mktemp("fleet"), 4, broken={1, 2})


def settings(location: str) -> AuditSettings:
    return AuditSettings(ScanOptions(), load_policy("default"), date(2026, 12, 1), location)


def audited(fleet: Fleet, location: str) -> dict[str, Any]:
    results = audit_images(list(enumerate(fleet.references)), settings(location))
    record_run(results, location, 1.0e9)
    return audit_dict(results)


def test_the_same_audit_on_sqlite_and_postgresql(
    fleet: Fleet, postgres: str, tmp_path: Path
) -> None:
    on_sqlite = audited(fleet, str(tmp_path / "store"))
    on_postgres = audited(fleet, postgres)
    assert on_sqlite == on_postgres
    broken = {i["reference"] for i in on_postgres["images"] if i["broken"]}
    assert broken == fleet.broken
    again = audited(fleet, postgres)  # the second run takes the recorded results
    assert all(i["reused"] for i in again["images"])
    assert [{**i, "reused": False} for i in again["images"]] == on_postgres["images"]


def test_layer_facts_are_shared_through_postgresql(fleet: Fleet, postgres: str) -> None:
    from imagescan.scan import read_image

    first = open_store(postgres)
    read_image(fleet.references[0], ScanOptions(), store=first)
    first.close()
    second = open_store(postgres)  # another client: no memory of the first one
    read_image(fleet.references[0], ScanOptions(), store=second)
    assert second.stats.hits == 3 and not second.stats.notes
    second.close()


def test_a_bad_url_is_a_one_line_error(postgres: str) -> None:
    wrong = postgres.replace("port=", "port=1")
    with pytest.raises(UsageError, match=r"^store postgresql://"):
        open_store(wrong)


def test_a_report_kept_in_postgresql_is_read_by_another_client(fleet: Fleet, postgres: str) -> None:
    from imagescan.recorded import Judging, record_report, recorded_report, report_key
    from imagescan.scan import scan

    done = scan(fleet.references[1], ScanOptions())
    first = open_store(postgres)
    key = report_key(
        done.image.config,
        Judging(ScanOptions(), load_policy("default"), "error"),
        first.facts_version,
    )
    assert key is not None and recorded_report(first, key) is None
    record_report(first, key, done.report)
    first.close()
    second = open_store(postgres)
    assert recorded_report(second, key) == done.report and not second.stats.notes
    second.close()
