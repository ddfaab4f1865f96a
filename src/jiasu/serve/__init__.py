"""`jiasu serve`: an artifact from `jiasu optimize` behind an inference server.

The Open Inference Protocol (KServe v2) over REST, served by FastAPI on uvicorn on one
machine (`jiasu.serve.server`) or by Ray Serve over a cluster (`jiasu.serve.ray_engine`),
with dynamic batching (`jiasu.serve.batcher`). Nothing else in jiasu imports this package;
its web dependencies come with the ``serve`` extra.
"""

from __future__ import annotations

from jiasu.serve.settings import ServeSettings

__all__ = ["ServeSettings"]
