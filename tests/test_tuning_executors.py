"""The executors and the search loop's failure handling, without training.

Real Ray where Ray is what is tested (a two-node local cluster of one CPU
each, started and shut down here); otherwise the in-process executor with
small module-level task functions.
"""

from __future__ import annotations

import pytest

from engine.parallel import RayExecutor, ray_task_cpus


def _nodes(*cpus, dead=()):
    alive = [{"Alive": True, "Resources": {"CPU": float(c)}} for c in cpus]
    return alive + [{"Alive": False, "Resources": {"CPU": float(c)}} for c in dead]


@pytest.mark.parametrize(
    ("workers", "cpus", "dead", "expected"),
    [
        (1, (1, 1), (), 1),  # 2 CPUs in all, but no node holds 2
        (1, (4, 2), (), 4),
        (2, (8, 8), (), 8),
        (3, (8, 8), (), 5),
        (8, (2, 2), (), 1),
        (1, (2,), (64,), 2),  # a dead node's CPUs are not there
    ],
)
def test_a_ray_task_never_asks_for_more_cpus_than_one_node_has(workers, cpus, dead, expected):
    nodes = _nodes(*cpus, dead=dead)
    got = ray_task_cpus(workers, nodes)
    # brute force: the largest per-task share that fits on some alive node
    total, largest = sum(cpus), max(cpus)
    fits = [k for k in range(1, total + 1) if k <= largest and k * workers <= total] or [1]
    assert got == expected == max(fits)


@pytest.mark.slow
def test_ray_runs_a_fit_on_a_cluster_of_one_cpu_nodes():
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        pytest.skip("a Ray is already running in this process")
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        with RayExecutor(divmod, 7, workers=1) as ex:
            assert ex.threads == 1
            # before the cap, the task asked for both nodes' 2 CPUs and was never scheduled
            assert ray.get(ex.submit(15), timeout=60) == divmod(15, 7)
    finally:
        ray.shutdown()
        cluster.shutdown()
