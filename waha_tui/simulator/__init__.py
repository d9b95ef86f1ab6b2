"""A WAHA simulator: a real HTTP server answering like WAHA, with faults on demand."""

from waha_tui.simulator.app import Simulator, create_app
from waha_tui.simulator.server import SimulatorServer
from waha_tui.simulator.state import SimState

__all__ = ["SimState", "Simulator", "SimulatorServer", "create_app"]
