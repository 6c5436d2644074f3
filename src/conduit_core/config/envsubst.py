"""``${VAR}`` and ``${VAR:-default}`` substitution in configuration strings.

As in the shell, ``${VAR:-default}`` uses the default when VAR is unset or
empty. Only text of exactly that shape is touched: ``$HOME``, ``$5`` or a lone ``$``
stay as written, and ``$${VAR}`` is the escape for a literal ``${VAR}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from conduit_core.config.yaml_source import Located, PathKey, format_path
from conduit_core.errors import ConfigIssue

_REF = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute(value: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """Return ``value`` with references replaced, and the names that were unset."""
    missing: list[str] = []

    def repl(match: re.Match[str]) -> str:
        escaped, name, default = match.group(1), match.group(2), match.group(3)
        if escaped:
            return match.group(0)[1:]
        value = env.get(name)
        if default is not None and not value:  # as in the shell, ":-" also replaces an empty value
            return default
        if value is not None:
            return value
        missing.append(name)
        return match.group(0)

    return _REF.sub(repl, value), missing


def substitute_tree(located: Located, env: Mapping[str, str]) -> tuple[Any, list[ConfigIssue]]:
    """Substitute in every string of the document; unset variables become issues."""
    issues: list[ConfigIssue] = []

    def walk(node: Any, path: PathKey) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, (*path, k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, (*path, i)) for i, v in enumerate(node)]
        if isinstance(node, str) and "$" in node:
            new, missing = substitute(node, env)
            for name in missing:
                line, column = located.position(path)
                issues.append(ConfigIssue(
                    f"environment variable {name} is not set (set it, add it to .env, "
                    f"or give a default with ${{{name}:-value}})",
                    format_path(path), line, column,
                ))
            return new
        return node

    return walk(located.data, ()), issues
