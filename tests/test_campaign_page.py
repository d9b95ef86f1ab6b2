"""Store.campaign_page: the dashboard sorts, filters, counts and pages in the database, on
SQLite and PostgreSQL alike, each sort along an index of its own. Checked against the same
order worked out in Python from every row."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from waha_tui.models import CAMPAIGN_SORTS, CASE_FOLDED_SORTS, utcnow
from waha_tui.store import C, Store

NAMES = ["alpha", "Beta", "gamma", "ALPHA", "delta_x", "50% off", "Ünïcode"]


def fill(store: Store, count: int = 60, seed: int = 3) -> list[dict[str, Any]]:
    """Campaigns with ties and NULLs in every sortable column."""
    rng = random.Random(seed)
    now = utcnow().replace(microsecond=0)
    rows = []
    for _ in range(count):
        when = [None, now - timedelta(hours=rng.randint(0, 3))]
        rows.append(
            dict(
                name=rng.choice(NAMES) + rng.choice(["", " 2"]),
                template_text="x",
                status=rng.choice(["Paused", "Completed", "Scheduled"]),
                session=rng.choice(["default", "sales"]),
                scheduled_at=rng.choice(when),
                started_at=rng.choice(when),
                completed_at=rng.choice(when),
                created_at=now,
                total=rng.randint(0, 3),
                next_index=rng.randint(0, 3),
                failed=rng.randint(0, 1),
                updated_at=rng.choice(when),
            )
        )
    with store.write() as conn:
        conn.execute(sa.insert(C), rows)
        every = conn.execute(sa.select(C)).mappings().all()
    return [dict(r) for r in every]


def expected(rows: list[dict[str, Any]], sort: str, descending: bool, needle: str) -> list[int]:
    """The order the dashboard promises: NULLs first ascending (last descending), ties by
    id in the same direction, names in any case."""
    needle = needle.lower()
    chosen = [r for r in rows if needle in r["name"].lower() or needle in r["status"].lower()]

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        value = r[sort]
        if sort in CASE_FOLDED_SORTS:
            value = value.lower()
        return (value is not None, value if value is not None else 0, r["id"])

    return [r["id"] for r in sorted(chosen, key=key, reverse=descending)]


def all_pages(store: Store, sort: str, descending: bool, needle: str, size: int) -> list[int]:
    ids: list[int] = []
    offset = 0
    while True:
        page = store.campaign_page(sort, descending, needle, offset=offset, limit=size)
        assert page.offset == offset
        ids += [r.id for r in page.rows]
        offset += size
        if offset >= page.count:
            return ids


@pytest.mark.parametrize("descending", [False, True])
def test_every_sort_pages_through_every_campaign_in_order(store: Store, descending: bool) -> None:
    rows = fill(store)
    ascii_rows = [r for r in rows if r["name"].isascii()]  # lower() differs beyond ASCII
    for sort in CAMPAIGN_SORTS:
        for needle in ("", "ALP", "paus", "50%", "_x"):
            got = all_pages(store, sort, descending, needle, size=7)
            want = expected(rows, sort, descending, needle)
            if sort in CASE_FOLDED_SORTS:  # SQLite folds ASCII only: compare those
                got = [i for i in got if i in {r["id"] for r in ascii_rows}]
                want = [i for i in want if i in {r["id"] for r in ascii_rows}]
            assert got == want, (sort, descending, needle)
    # The wildcards are text: "50%" is not "50 anything", "_x" not "any one letter then x".
    assert {r.name for r in store.campaign_page("id", True, "50%", limit=100).rows} <= {
        "50% off",
        "50% off 2",
    }


def test_the_page_around_a_campaign_holds_it_wherever_it_sorts(store: Store) -> None:
    rows = fill(store, count=45)
    for sort in ("next_index", "started_at", "name"):
        for descending in (False, True):
            order = expected(rows, sort, descending, "")
            for cid in order[::4]:
                page = store.campaign_page(sort, descending, "", limit=10, around=cid)
                assert page.found
                assert page.offset == order.index(cid) // 10 * 10
                assert [r.id for r in page.rows] == order[page.offset : page.offset + 10]
    # Filtered out, or gone: not found, and the page asked for by offset instead.
    some = rows[0]["id"]
    page = store.campaign_page("id", True, "no such text", limit=10, around=some)
    assert not page.found and page.rows == [] and page.count == 0
    page = store.campaign_page("id", True, "", offset=10, limit=10, around=10**9)
    assert not page.found and page.offset == 10


def test_an_offset_past_the_end_gives_the_last_page(store: Store) -> None:
    rows = fill(store, count=23)
    order = expected(rows, "failed", True, "")
    page = store.campaign_page("failed", True, "", offset=500, limit=10)
    assert (page.offset, page.count) == (20, 23)
    assert [r.id for r in page.rows] == order[20:]  # read from the end, in order
    empty = Store(store.target)  # nothing matching: one empty first page
    try:
        page = empty.campaign_page("name", False, "zzz", offset=30, limit=10)
    finally:
        empty.close()
    assert (page.offset, page.count, page.rows) == (0, 0, [])


def test_an_unknown_sort_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="cannot sort campaigns by 'template_text'"):
        store.campaign_page("template_text", True, "")


def test_every_sort_walks_an_index_on_sqlite(tmp_path: Any) -> None:
    """No sort of all campaigns before a page: on 100,000 campaigns that is the difference
    between a millisecond and a tenth of a second, at every refresh tick. The statements
    campaign_page runs, as SQLite plans them."""
    store = Store(tmp_path / "campaigns.db")
    fill(store, count=5)
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "ORDER BY" in statement and not statement.startswith("EXPLAIN"):
            seen.append((statement, parameters))

    sa.event.listen(store.read_engine, "before_cursor_execute", capture)
    try:
        for sort in CAMPAIGN_SORTS:
            for descending in (False, True):
                seen.clear()
                store.campaign_page(sort, descending, "", offset=0, limit=2)
                store.campaign_page(sort, descending, "", offset=4, limit=2)  # from the end
                assert len(seen) == 2
                with store.read() as conn:
                    for statement, parameters in list(seen):
                        plan = conn.exec_driver_sql(
                            "EXPLAIN QUERY PLAN " + statement, parameters
                        ).fetchall()
                        text = " ".join(str(step[-1]) for step in plan)
                        assert "TEMP B-TREE" not in text, (sort, descending, text)
                        assert "USING INDEX" in text or sort == "id", (sort, text)
    finally:
        store.close()


def test_missing_sort_indexes_are_made_when_a_database_opens(db_target: str) -> None:
    """By name, whatever the schema version: a database from before them gets them."""
    store = Store(db_target)
    store.close()
    engine = sa.create_engine(db_target if "://" in db_target else f"sqlite:///{db_target}")
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_campaign_by_name")
        conn.exec_driver_sql("DROP INDEX ix_campaign_by_failed")
    store = Store(db_target)
    try:
        with store.read() as conn:
            assert store._missing_sort_indexes(conn) == []
    finally:
        store.close()
        engine.dispose()
