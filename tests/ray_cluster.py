"""A 2-node Ray cluster on loopback for the tests that need one (engines, serve).

`ray.cluster_utils.Cluster` starts a head node and a second node, 1 CPU each, with their
own raylets and object stores, on loopback with token authentication as a local run has
it. The block's driver connects to it; both are stopped by their own handles (the
driver's connection, then the cluster's nodes) when the block ends, whether its tests
passed or not, so later tests get the CPUs back: never `ray stop` or a broad kill.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

NODE = {"num_cpus": 1, "object_store_memory": 100 * 1024**2}


@contextlib.contextmanager
def two_node_cluster(env: Mapping[str, str] | None = None) -> Iterator[str]:
    """The cluster's address, with `env` set in this process (which the nodes inherit)
    for the block and restored after it."""
    import ray
    from ray import cluster_utils

    from jiasu.core.environ import environ_set
    from jiasu.engines.ray_local import loopback_only

    with environ_set(dict(env or {})), loopback_only():
        cluster = cluster_utils.Cluster(
            initialize_head=True, head_node_args={**NODE, "include_dashboard": False}
        )
        try:
            cluster.add_node(**NODE)
            cluster.wait_for_nodes()
            ray.init(address=cluster.address)
            yield cluster.address
        finally:
            ray.shutdown()
            cluster.shutdown()
