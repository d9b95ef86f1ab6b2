"""Varied text: the stable pick of each recipient's text, how many different texts a
campaign sends, and the runner storing each text before its message leaves (the simulator
over a real socket, the real database) and re-sending that same text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from engine_helpers import (
    fast_config,
    make_campaign,
    module_simulator,
    raw_rows,
    reset_simulator,
    run_to_end,
)

from waha_tui import events as ev
from waha_tui.simulator import SimState, Simulator, SimulatorServer
from waha_tui.status import RecipientStatus
from waha_tui.store import Store
from waha_tui.variants import COUNT_LIMIT, CampaignTexts, TextCount, pick_index
from waha_tui.waha import WahaClient

RS = RecipientStatus
TEMPLATE = "{Hi|Hello|Hey} {name}, {our {spring|summer} sale|the sale} starts {today|now}"
VARIANTS = ["{Good morning|Morning} {name}: the sale is on"]


def _pick(texts: CampaignTexts, cid: int, position: int, name: str = "Ann") -> str:
    return texts.pick(cid, position, {}, name=name, default_name="friend")


# -- the stable pick ---------------------------------------------------------------------


def test_the_pick_is_the_same_in_another_process_with_another_hash_seed() -> None:
    texts = CampaignTexts.of(TEMPLATE, VARIANTS)
    here = [_pick(texts, 7, p) for p in range(40)]
    code = (
        "import json; from waha_tui.variants import CampaignTexts as T;"
        f"t = T.of({TEMPLATE!r}, {VARIANTS!r});"
        "print(json.dumps([t.pick(7, p, {}, name='Ann', default_name='friend') "
        "for p in range(40)]))"
    )
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert json.loads(out.stdout) == here
    assert len(set(here)) > 5  # and they do differ from recipient to recipient


def test_the_pick_depends_on_campaign_and_position_only() -> None:
    texts = CampaignTexts.of(TEMPLATE, VARIANTS)
    again = CampaignTexts.of(TEMPLATE, VARIANTS)
    assert [_pick(texts, 3, p) for p in range(20)] == [_pick(again, 3, p) for p in range(20)]
    # Another campaign (a clone, say) picks afresh.
    assert [_pick(texts, 3, p) for p in range(20)] != [_pick(texts, 4, p) for p in range(20)]


def test_recipients_spread_evenly_over_the_options_and_the_variants() -> None:
    n = 6000
    options = Counter(_pick(CampaignTexts.of("{a|b|c}", []), 11, p) for p in range(n))
    assert set(options) == {"a", "b", "c"}
    for count in options.values():
        assert abs(count - n / 3) < n * 0.04, options
    variants = Counter(_pick(CampaignTexts.of("one", ["two"]), 11, p) for p in range(n))
    assert abs(variants["one"] - n / 2) < n * 0.04, variants
    # Two choices of one text are picked independently: every pair about as often.
    pairs = Counter(_pick(CampaignTexts.of("{a|b}{c|d}", []), 5, p) for p in range(n))
    assert set(pairs) == {"ac", "ad", "bc", "bd"}
    assert all(abs(c - n / 4) < n * 0.04 for c in pairs.values()), pairs


def test_pick_index_is_sha256_of_the_campaign_position_and_choice() -> None:
    import hashlib

    digest = hashlib.sha256(b"12:34:0.2").digest()
    assert pick_index(12, 34, "0.2", 7) == int.from_bytes(digest[:8], "big") % 7


def test_a_campaign_created_before_choices_sends_its_text_as_written() -> None:
    old = CampaignTexts.of("{Hi|Hello} {name}", None)
    assert not old.varied and str(old.count()) == "1 different text"
    assert _pick(old, 1, 0) == "{Hi|Hello} Ann"


# -- how many different texts ------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "variants", "count"),
    [
        ("Hi {name}", [], TextCount(1, True)),
        ("{Hi|Hello} {name}", [], TextCount(2, True)),
        ("{Hi|Hello} {a|b|c}", ["{x|y}"], TextCount(8, True)),
        ("{Hi|Hello {x|y}}", [], TextCount(3, True)),  # 1 + 2, not 2 x 2
        ("{a|a} {b|b}", [], TextCount(1, True)),  # the same text counted once
        ("{Hi|Hello}", ["Hi"], TextCount(2, True)),  # a variant that is an option of another
        ("{x|\\{x\\}} {x}", [], TextCount(2, True)),  # a literal {x} is not the placeholder
        ("{a|b}" * 14, [], TextCount(COUNT_LIMIT, False)),  # 16,384
    ],
)
def test_the_count_of_different_texts(template: str, variants: list[str], count: TextCount) -> None:
    assert CampaignTexts.of(template, variants).count() == count


def test_a_huge_count_is_said_more_than_the_limit() -> None:
    count = CampaignTexts.of("{a|b|c|d}" * 30, []).count()
    assert str(count) == f"more than {COUNT_LIMIT:,} different texts"


def test_samples_differ_and_are_stable() -> None:
    texts = CampaignTexts.of("{Hi|Hello|Hey} {name}", [])
    first = texts.samples(3, {}, name="Ann", default_name="x")
    assert sorted(first) == ["Hello Ann", "Hey Ann", "Hi Ann"]
    assert texts.samples(3, {}, name="Ann", default_name="x") == first
    assert texts.samples(5, {}, name="Bo", default_name="x") == [
        t.replace("Ann", "Bo") for t in first
    ]


# -- the runner stores each text before the send, and re-sends the same -----------------


@pytest.fixture(scope="module")
def module_server() -> Iterator[SimulatorServer]:
    yield from module_simulator()


@pytest.fixture
def sim_server(module_server: SimulatorServer) -> SimulatorServer:
    return reset_simulator(module_server)


class Watching(SimState):
    """Reads the recipient's stored text from the database (raw SQL, not the store's code)
    at the moment WAHA takes its message."""

    def __init__(self, db: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.db = db
        self.stored_then: list[tuple[str, str, str | None]] = []

    def record(self, session: str, chat_id: str, text: str, **kwargs: Any) -> Any:
        rows = raw_rows(self.db, "SELECT text FROM recipient WHERE chat_id = :c", c=chat_id)
        self.stored_then.append((chat_id, text, rows[0][0] if rows else None))
        return super().record(session, chat_id, text, **kwargs)


@pytest.mark.parametrize("message_ids", [True, False], ids=["ids-ahead", "sending-mark"])
async def test_each_text_is_stored_before_its_message_leaves(
    store: Store, db_target: str, message_ids: bool
) -> None:
    state = Watching(db_target, message_ids=message_ids)
    state.add_session("default", "WORKING")
    server = SimulatorServer(Simulator(state)).start()
    try:
        cid = make_campaign(store, 12, text=TEMPLATE, variants=VARIANTS)
        async with WahaClient(server.url) as client:
            end, _ = await run_to_end(store, client, cid)
    finally:
        server.stop()
    assert isinstance(end, ev.Completed) and end.sent == 12
    assert len(state.stored_then) == 12
    for chat_id, sent, stored in state.stored_then:
        assert stored == sent, f"{chat_id}: {stored!r} stored when {sent!r} left"
    texts = CampaignTexts.of(TEMPLATE, VARIANTS)
    recs = store.recipients(cid)
    assert [r.text for r in recs] == [
        texts.pick(cid, r.position, r.variables, name=r.name, default_name="friend") for r in recs
    ]
    assert len({r.text for r in recs}) > 3  # varied, as the campaign's texts allow


async def test_a_resume_re_sends_the_same_text_with_the_same_id(
    store: Store, client: WahaClient, sim_server: SimulatorServer
) -> None:
    state = sim_server.state
    state.drop_after_record(2)  # the first try and its retry both lose the answer
    cid = make_campaign(store, 3, text=TEMPLATE, variants=VARIANTS)
    end, _ = await run_to_end(store, client, cid, fast_config())
    assert isinstance(end, ev.Paused)
    first = store.recipients(cid)[0]
    assert first.status == RS.SENDING and first.text
    end, _ = await run_to_end(store, client, cid, fast_config())
    assert isinstance(end, ev.Completed) and (end.sent, end.unknown) == (3, 0)
    to_first = [m for m in state.attempts if m.chat_id == first.chat_id]
    assert len(to_first) == 3  # two before the pause, one after the resume
    assert {m.text for m in to_first} == {first.text}
    assert {m.id for m in to_first} == {to_first[0].id}
    assert [m.text for m in state.sent()] == [r.text for r in store.recipients(cid)]


async def test_a_stored_text_is_the_one_sent(
    store: Store, client: WahaClient, sim_server: SimulatorServer
) -> None:
    """Once stored, a text is what goes out (an older pick, a text stored by an older
    version): never picked again."""
    from engine_helpers import force_recipient

    cid = make_campaign(store, 2, text="{Hi|Hello} {name}", variants=[])
    force_recipient(store, cid, 1, text="stored earlier")
    end, _ = await run_to_end(store, client, cid)
    assert isinstance(end, ev.Completed)
    sent = sim_server.state.sent()
    assert sent[1].text == "stored earlier"
    assert sent[0].text in ("Hi P0", "Hello P0")


async def test_a_value_missing_only_matters_where_the_pick_needs_it(
    store: Store, client: WahaClient, sim_server: SimulatorServer
) -> None:
    from waha_tui.render import RenderError
    from waha_tui.store import NewRecipient

    # No column city at all for these recipients: half of them are picked "Hi {name}".
    recipients = [
        NewRecipient(f"49151000{i:04d}", f"49151000{i:04d}@c.us", f"P{i}", {}) for i in range(20)
    ]
    template = "{Hi|Hello {city}} {name}"
    cid = make_campaign(
        store, text=template, variants=[], recipients=recipients, max_consecutive_failures=0
    )
    end, _ = await run_to_end(store, client, cid)
    assert isinstance(end, ev.Completed)
    texts = CampaignTexts.of(template, [])
    expected = []
    for r in store.recipients(cid):
        try:
            texts.pick(cid, r.position, {}, name=r.name, default_name="friend")
            expected.append(RS.SENT)
        except RenderError:
            expected.append(RS.FAILED)
    assert [r.status for r in store.recipients(cid)] == expected
    assert RS.SENT in expected and RS.FAILED in expected
