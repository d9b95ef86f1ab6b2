from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from waha_tui.simulator import SimState, Simulator, SimulatorServer
from waha_tui.waha import WahaClient


@pytest.fixture
def sim_server() -> Iterator[SimulatorServer]:
    """The simulator on a real loopback socket."""
    with SimulatorServer(Simulator(SimState(start_delay=0.05))) as server:
        yield server


@pytest.fixture
def sim() -> Simulator:
    return Simulator(SimState(start_delay=0.05))


@pytest.fixture
async def asgi_client(sim: Simulator) -> AsyncIterator[WahaClient]:
    """A client talking to the simulator app in-process through httpx's ASGI transport."""
    client = WahaClient("http://waha.test", transport=httpx.ASGITransport(app=sim))
    yield client
    await client.aclose()
