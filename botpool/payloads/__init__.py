"""Code that runs on hosts or inside containers: Python (standard library only) and shell.

Each file here is shipped as text (read with importlib.resources and passed to a remote
`python3` or `sh`), so a Python one may import nothing from botpool or from third parties.
Shell scripts are real files, linted with shellcheck (`make lint`); `shell()` gives one its
inputs as variables assigned (quoted) in front of it.
"""

import re
import shlex
from importlib import resources

_VARIABLE = re.compile(r"[a-z_][a-z0-9_]*")


def shell(name: str, **variables: object) -> str:
    """The text of the shell script `name`, preceded by `variable='value'` lines."""
    for variable in variables:
        if not _VARIABLE.fullmatch(variable):
            raise ValueError(f"not a shell variable name: {variable!r}")
    text = source(name)
    assigned = "".join(f"{k}={shlex.quote(str(v))}\n" for k, v in variables.items())
    return assigned + text


def source(name: str) -> str:
    """The text of the payload `name`."""
    return (resources.files(__name__) / name).read_text()


def supervisor_status_command() -> list[str]:
    """The command, run inside a pool, that prints its programs as `supervisorctl status` does
    (supervisor_status.py: half of supervisorctl's CPU, and no import of supervisor)."""
    return ["python3", "-I", "-S", "-c", source("supervisor_status.py")]
