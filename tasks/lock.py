"""Record the allocation that was applied, so that later edits never move these bots."""

from pathlib import Path

from pyinfra import host
from pyinfra.operations import python

from botpool.allocate import lock_path
from tasks import context

ctx = context.for_host(host)
lock = lock_path(context.layout_path(host))
text = ctx.plan.allocation.to_yaml()

if not lock.exists() or lock.read_text() != text:
    python.call(
        name=f"Write {lock} (commit it beside the layout)",
        function=Path(lock).write_text,
        data=text,
        _run_once=True,
    )
