"""Read YAML while remembering the line of every key, and report problems as FILE:LINE: key: msg.

PyYAML's plain loaders forget where values came from and let a repeated key silently
replace the first one. Both would hide mistakes in a layout, so this module composes the
node tree itself: it keeps a line for every key path and reports every duplicate key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with an input file, located so that an editor can jump to it."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}: {where}{self.message}"


class LayoutError(Exception):
    """Every problem found in the inputs; nothing may be applied when this is raised."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


def dotted(path: Path_) -> str:
    """Render a key path the way a person reads it: users.alice.bots[0].stake_amount."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


@dataclass
class Document:
    """Parsed YAML data plus the 1-based line of each key path."""

    file: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def line(self, path: Path_) -> int:
        """The line of path, or of its nearest ancestor that has one."""
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path, 1)

    def problem(self, path: Path_, message: str) -> Problem:
        return Problem(self.file, self.line(path), dotted(path), message)


def load(text: str, file: str) -> Document:
    """Parse text; raise LayoutError on a syntax error, collect duplicate keys as problems."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        reason = exc.problem or str(exc)
        if exc.context and exc.context_mark and exc.context_mark.line + 1 != line:
            reason += f" ({exc.context} that starts on line {exc.context_mark.line + 1})"
        raise LayoutError([Problem(file, line, "", f"YAML syntax error: {reason}")]) from None
    doc = Document(file, None)
    if node is not None:
        doc.lines[()] = node.start_mark.line + 1
        doc.data = _construct(node, (), doc)
    return doc


def _construct(node: yaml.Node, path: Path_, doc: Document) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                doc.problems.append(doc.problem(path, "YAML merge keys (<<) are not supported"))
                continue
            key = _scalar(key_node)
            key_path = (*path, str(key))
            line = key_node.start_mark.line + 1
            if key in out:
                first = doc.lines[key_path]
                doc.problems.append(
                    Problem(
                        doc.file,
                        line,
                        dotted(key_path),
                        f"duplicate key (first defined on line {first}); "
                        "YAML would silently keep only the last one: merge or rename them",
                    )
                )
                continue
            doc.lines[key_path] = line
            out[key] = _construct(value_node, key_path, doc)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            doc.lines[(*path, index)] = item.start_mark.line + 1
            items.append(_construct(item, (*path, index), doc))
        return items
    return _scalar(node)


_SCALARS = yaml.constructor.SafeConstructor()


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        return f"<{type(node).__name__}>"  # a mapping used as a key: reported as a bad name
    return _SCALARS.construct_object(node)
