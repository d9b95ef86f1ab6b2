"""The campaign runner: sends a campaign's recipients in order, durably, with pacing.

- `policy`: what each failure means (the one error policy);
- `ids`: pre-generated message ids, fetched ahead and stored before their sends;
- `writer`: outcomes written in order, behind the sends where that is safe;
- `run`: one run of one campaign, the loop;
- `leases`: one heartbeat per process, renewing every run's lease in one statement;
- `pool`: the runs of this process, their owner id and leases;
- `config`: settings and the clock.
"""

from waha_tui.runner.config import Clock, RunnerConfig, lease_seconds_from_env, new_owner_id
from waha_tui.runner.pool import RunnerPool
from waha_tui.runner.run import CampaignRun

__all__ = [
    "CampaignRun",
    "Clock",
    "RunnerConfig",
    "RunnerPool",
    "lease_seconds_from_env",
    "new_owner_id",
]
