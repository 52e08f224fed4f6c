"""The twin as a live plant: its historian signals served over OPC UA in simulated time.

:class:`PlantServer` (asyncua) plays a :class:`twin.site.SitePlan`: one variable per historian
tag (``ns=<twin>;s=BR-101.TEMP.PV``) with engineering unit, status (Good / Uncertain / Bad
from the historian quality 192 / 64 / 0) and the simulated reading time as SourceTimestamp;
HistoryRead (raw) over a recent window; the current batch id, operation and phase of every
unit. :class:`SimClock` maps wall time to simulated time (``speed`` simulated seconds per
second). :func:`serve` runs one until interrupted; ``python -m twin.live`` is its command line.
See ``docs/live.md``.
"""

from twin.live.server import NAMESPACE_URI, Injection, PlantServer, PlantServerThread, SimClock, serve

__all__ = ["NAMESPACE_URI", "Injection", "PlantServer", "PlantServerThread", "SimClock", "serve"]
