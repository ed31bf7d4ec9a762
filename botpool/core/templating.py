"""The jinja2 templates of templates/: one environment, strict (an unknown name is an error)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from botpool.core.names import MOUNT

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.globals["mount"] = MOUNT  # the paths inside a pool, from botpool.core.names
    return env


def render_template(name: str, **values: Any) -> str:
    return _env().get_template(name).render(**values)
