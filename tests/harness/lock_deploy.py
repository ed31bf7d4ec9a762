"""A pyinfra deploy that takes botpool's converge lock and runs one harmless command, so that
the lock can be tested over SSH on a bare host (no engine, no image). From the repository:

    pyinfra INVENTORY tests/harness/lock_deploy.py
"""

from pyinfra import local
from pyinfra.operations import server

local.include("tasks/hostlock.py")
server.shell(name="Say hello while holding the converge lock", commands=["true"])
