"""Read YAML while remembering the line of every key, and report problems as FILE:LINE: key: msg.

PyYAML's plain loaders forget where values came from and let a repeated key silently
replace the first one. Both would hide mistakes in a layout, so this module composes the
node tree itself: it keeps a line for every key path and reports every duplicate key.

Inputs are untrusted (a tired user, or an attacker who got a file into a pull request), so
reading is bounded before anything is parsed: at most MAX_BYTES of UTF-8 from a regular
file, nesting at most MAX_DEPTH deep, at most MAX_VALUES values once aliases are expanded
(recursive aliases are refused), only plain YAML types (no tags, dates, NaN or infinity),
and numbers within 64 bits. Each limit is an error that names it, never a hang.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str | int, ...]

MAX_BYTES = 1 << 20  # a 1,000-bot layout is about 60 KiB
MAX_DEPTH = 32  # the deepest key botpool reads is 6 levels down
MAX_VALUES = 100_000  # after alias expansion: stops "billion laughs"
MAX_NUMBER = 2**63  # no setting needs more; Python would happily hold 4,000 digits
PLAIN_TAGS = {
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq")
}
_UNPRINTABLE = re.compile(r"[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_BOMS = {
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe": "UTF-16",
    b"\xfe\xff": "UTF-16",
}


PATH_SHOWN = 300  # characters of a problem's key path shown, at most
MESSAGE_SHOWN = 2000  # characters of a problem's message shown, at most


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters)"


def printable(text: str) -> str:
    """Text safe for a terminal: control characters (an ANSI escape, say) shown escaped."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """Plain aligned columns, the way `docker ps` prints them (control characters escaped)."""
    cells = [[printable(str(c)) for c in header]] + [[printable(str(c)) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with an input file, located so that an editor can jump to it."""

    file: str
    line: int
    path: str
    message: str

    def __post_init__(self) -> None:
        # a hostile value (a string of a megabyte) is quoted in its message: shown cut short
        object.__setattr__(self, "path", _cut(self.path, PATH_SHOWN))
        object.__setattr__(self, "message", _cut(self.message, MESSAGE_SHOWN))

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return printable(f"{self.file}:{self.line}: {where}{self.message}")


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
    refused: set[Path_] = field(default_factory=set)  # values already reported, now None

    def line(self, path: Path_) -> int:
        """The line of path, or of its nearest ancestor that has one."""
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path, 1)

    def problem(self, path: Path_, message: str) -> Problem:
        return Problem(self.file, self.line(path), dotted(path), message)

    def refuse(self, path: Path_, message: str) -> None:
        """A value that cannot be read: reported here, and None for whoever reads it."""
        self.problems.append(self.problem(path, message))
        self.refused.add(path)


def read_bytes(path: str | Path, what: str, limit: int = MAX_BYTES) -> bytes:
    """The content of a regular file of at most `limit` bytes, or LayoutError saying why not.

    Opened without blocking (a FIFO would wait for a writer for ever) and checked to be a
    regular file before reading (a symlink to /dev/zero would never end).
    """

    def fail(message: str) -> LayoutError:
        return LayoutError([Problem(str(path), 1, "", f"cannot read the {what}: {message}")])

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        raise fail(exc.strerror or str(exc)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise fail("it is not a regular file")
        if info.st_size > limit:
            raise fail(f"it is larger than {limit // 1024} KiB, the most botpool reads")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise fail(exc.strerror or str(exc)) from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise fail(f"it is larger than {limit // 1024} KiB, the most botpool reads")
    return data


def decode(data: bytes, file: str) -> str:
    """UTF-8 text (a BOM is allowed), or LayoutError naming the line of the first bad byte."""
    for bom, encoding in _BOMS.items():
        if data.startswith(bom):
            raise LayoutError(
                [Problem(file, 1, "", f"the file is {encoding}-encoded: save it as UTF-8")]
            )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        byte = data[exc.start]
        message = f"not valid UTF-8 (byte 0x{byte:02x}): save the file as UTF-8"
        raise LayoutError([Problem(file, line, "", message)]) from None


def read(path: str | Path, what: str = "layout") -> Document:
    """Read and parse a YAML file within every bound; LayoutError if that is impossible."""
    return load(decode(read_bytes(path, what), str(path)), str(path))


def load(text: str, file: str) -> Document:
    """Parse text; raise LayoutError on a syntax error or a broken bound, collect the rest."""
    _check_characters(text, file)
    if len(text.encode()) > MAX_BYTES:
        raise LayoutError([Problem(file, 1, "", f"larger than {MAX_BYTES // 1024} KiB")])
    _check_depth(text, file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise LayoutError([_syntax_problem(exc, file)]) from None
    doc = Document(file, None)
    if node is not None:
        doc.lines[()] = node.start_mark.line + 1
        doc.data = _Builder(doc).build(node, ())
    return doc


def _syntax_problem(exc: yaml.YAMLError, file: str) -> Problem:
    if not isinstance(exc, yaml.MarkedYAMLError):
        return Problem(file, 1, "", f"YAML syntax error: {exc}")
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 1
    reason = exc.problem or str(exc)
    if exc.context and exc.context_mark and exc.context_mark.line + 1 != line:
        reason += f" ({exc.context} that starts on line {exc.context_mark.line + 1})"
    return Problem(file, line, "", f"YAML syntax error: {reason}")


def _check_characters(text: str, file: str) -> None:
    bad = _UNPRINTABLE.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        char = ascii(bad.group())[1:-1]
        message = f"the character {char} is not allowed in YAML: remove it"
        raise LayoutError([Problem(file, line, "", message)])


_OPENS = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken)
_OPENS_FLOW = (yaml.FlowMappingStartToken, yaml.FlowSequenceStartToken)
_CLOSES = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


def _check_depth(text: str, file: str) -> None:
    """Refuse deep nesting before composing it (PyYAML's composer recurses per level)."""
    depth = 0
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, _OPENS + _OPENS_FLOW):
                depth += 1
                if depth > MAX_DEPTH:
                    line = token.start_mark.line + 1
                    message = f"nested deeper than {MAX_DEPTH} levels, the most botpool reads"
                    raise LayoutError([Problem(file, line, "", message)])
            elif isinstance(token, _CLOSES):
                depth -= 1
    except yaml.YAMLError as exc:
        raise LayoutError([_syntax_problem(exc, file)]) from None


class _Builder:
    """Nodes -> plain Python values, with lines, within the bounds; problems go to the doc."""

    def __init__(self, doc: Document):
        self.doc = doc
        self.values = 0
        self.open: set[int] = set()  # nodes being built: seeing one again is a loop

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.values += 1
        if self.values > MAX_VALUES:
            message = (
                f"the file holds more than {MAX_VALUES:,} values once its YAML aliases "
                "are expanded: write it out plainly"
            )
            raise LayoutError([Problem(self.doc.file, node.start_mark.line + 1, "", message)])
        if id(node) in self.open:
            self.doc.refuse(path, "a YAML alias that contains itself")
            return None
        if node.tag not in PLAIN_TAGS:
            return self.refuse_tag(node, path)
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                items = []
                for index, item in enumerate(node.value):
                    self.doc.lines[(*path, index)] = item.start_mark.line + 1
                    items.append(self.build(item, (*path, index)))
                return items
            return self.scalar(node, path)
        finally:
            self.open.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: Path_) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.doc.problems.append(
                    self.doc.problem(path, "YAML merge keys (<<) are not supported")
                )
                continue
            key = self.key(key_node, path)
            key_path = (*path, str(key))
            line = key_node.start_mark.line + 1
            if key in out:
                first = self.doc.lines[key_path]
                self.doc.problems.append(
                    Problem(
                        self.doc.file,
                        line,
                        dotted(key_path),
                        f"duplicate key (first defined on line {first}); "
                        "YAML would silently keep only the last one: merge or rename them",
                    )
                )
                continue
            self.doc.lines[key_path] = line
            out[key] = self.build(value_node, key_path)
        return out

    def key(self, node: yaml.Node, path: Path_) -> Any:
        if not isinstance(node, yaml.ScalarNode) or node.tag not in PLAIN_TAGS:
            return f"<{type(node).__name__}>"  # a mapping used as a key: reported as a bad name
        return self.scalar(node, path)

    def scalar(self, node: yaml.Node, path: Path_) -> Any:
        try:
            value = _SCALARS.construct_object(node)
        except ValueError:  # an integer of thousands of digits
            value = math.inf
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if number and (not math.isfinite(value) or abs(value) >= MAX_NUMBER):
            message = (
                f"{node.value[:20]!r} is not a number botpool accepts: numbers must be "
                f"finite and below {MAX_NUMBER:.0e}"
            )
            self.doc.refuse(path, message)
            return None
        return value

    def refuse_tag(self, node: yaml.Node, path: Path_) -> None:
        if node.tag == "tag:yaml.org,2002:timestamp":
            message = f"YAML reads {node.value!r} as a date: quote it if you mean text"
        else:
            message = f"the YAML tag {node.tag!r} is not supported: write plain values"
        self.doc.refuse(path, message)


_SCALARS = yaml.constructor.SafeConstructor()
