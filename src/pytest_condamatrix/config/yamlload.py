"""YAML for configuration files: safe tags only, bounded aliases, no duplicate keys.

PyYAML's safe loader shares the node of an anchor between its aliases, so a few hundred
bytes can describe billions of values (the "billion laughs"): cheap to load, but anything
that walks the result (validation, a ``repr`` in a message) expands it. Documents whose
aliases would expand past :data:`MAX_NODES` values are refused before they are built.
A key written twice in one mapping is refused too: YAML says keys are unique, and PyYAML
silently keeps the last one.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

#: the most values a configuration may hold once its aliases are expanded
MAX_NODES = 100_000


class DocumentTooLarge(yaml.YAMLError):
    """The document's aliases expand past :data:`MAX_NODES` values, or it nests too deep."""

    def __init__(self, mark: Any, problem: str = "") -> None:
        super().__init__()
        self.problem = (
            problem or f"its aliases expand to more than {MAX_NODES} values (an alias bomb?)"
        )
        self.problem_mark = mark

    def __str__(self) -> str:
        return self.problem


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                ident = (key_node.tag, key_node.value)
                if ident in seen:
                    raise ConstructorError(
                        None,
                        None,
                        f"the key {_short(key_node.value)!r} is written twice in one mapping",
                        key_node.start_mark,
                    )
                seen.add(ident)
        return super().construct_mapping(node, deep=deep)


def load(text: str) -> Any:
    """Parse one YAML document (None when empty); raises :class:`yaml.YAMLError`."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node)
        return loader.construct_document(node)
    except RecursionError:  # PyYAML composes and builds nested values recursively
        raise DocumentTooLarge(None, "its values are nested too deeply") from None
    except ValueError as exc:  # int() of a number past Python's 4300-digit limit
        raise DocumentTooLarge(None, f"a value cannot be read ({_short(str(exc))})") from None
    finally:
        loader.dispose()


def _check_size(root: Node) -> None:
    """Count the values ``root`` expands to, each shared node once per use (memoised)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:  # a recursive alias: refused by the constructor anyway
            return 1
        active.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            for child in node.value:
                total += size(child)
                if total > MAX_NODES:
                    raise DocumentTooLarge(node.start_mark)
        elif isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                total += size(key_node) + size(value_node)
                if total > MAX_NODES:
                    raise DocumentTooLarge(node.start_mark)
        active.discard(key)
        sizes[key] = total
        return total

    size(root)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
