"""Full-space checks of a picture: is each basin a basin of the network, or a fold of the sheet?

- :mod:`.check`: :func:`verify_topology` (minima and separations of the join tree, decoded)
- :mod:`.result`: :class:`TopologyCheck` (stored with the topology), :func:`format_check`
"""

from __future__ import annotations

from .check import verify_topology
from .result import STATUSES, VERIFY_KEY, TopologyCheck, format_check

__all__ = ["STATUSES", "VERIFY_KEY", "TopologyCheck", "format_check", "verify_topology"]
