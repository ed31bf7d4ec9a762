"""Record the allocation that was applied, so that later edits never move these bots."""

from pathlib import Path

from pyinfra import host
from pyinfra.operations import python

from botpool.core.allocate import lock_path, write_lock
from botpool.core.plan import Plan
from tasks import context


def record(path: Path, plan: Plan) -> None:
    """Evaluated when the run ends: a host that failed on the way keeps its pending moves."""
    text = context.applied_allocation(plan).to_yaml()
    if not path.exists() or path.read_text() != text:
        write_lock(path, text)


plan = context.for_host(host).plan
lock = lock_path(context.layout_path(host))
if not lock.exists() or lock.read_text() != context.applied_allocation(plan).to_yaml():
    python.call(
        name=f"Write {lock} (commit it beside the layout)",
        function=record,
        path=lock,
        plan=plan,
        _run_once=True,
    )
