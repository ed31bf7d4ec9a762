"""Each host: reachable, and exactly what the plan says (the stale-pool-state bug, as a check)."""


def test_host_is_reachable_and_its_layout_is_valid(host_result):
    assert host_result.error is None, host_result.error


def test_host_runs_exactly_the_plan(host_result):
    """Planned containers with their spec hash, programs, files; nothing botpool-labelled extra."""
    drift = "\n".join(f"  {d}" for d in host_result.drift)
    assert not host_result.drift, f"{host_result.name} differs from the plan:\n{drift}"
