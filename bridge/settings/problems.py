"""Configuration problems in an operator's words: one line each, naming the setting (its variable,
or its key path in the ``BRIDGE_CONFIG`` file), never its value."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Iterable
from typing import NoReturn

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from bridge.errors import ConfigError

Loc = tuple[int | str, ...]

# pydantic's wording -> plain words, by error type (the rest: "Input should be" -> "must be")
_PLAIN = {
    "missing": "required",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "int_type": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be on or off (true/false, yes/no, 1/0)",
    "bool_type": "must be on or off (true/false, yes/no, 1/0)",
    "string_type": "must be text",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "list_type": "must be a list",
}


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the closest known name, or nothing."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


def plain(error: ErrorDetails, known: Iterable[str] = ()) -> str:
    """What is wrong with a value, without pydantic's phrasing and without the value."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        return f"unknown setting{did_you_mean(str(error['loc'][-1]), known)}"
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])  # our own validators' words
    if kind == "literal_error":
        return f"must be {ctx['expected']}"
    if kind in _PLAIN:
        return _PLAIN[kind]
    message = str(error["msg"]).replace("Input should be", "must be").replace("String should", "must")
    return message.replace("Value should", "must")


def describe(
    exc: ValidationError, name: Callable[[Loc], str], known: Callable[[Loc], Iterable[str]] = lambda _: ()
) -> list[str]:
    """Every error of ``exc``, one line each: ``SETTING: what is wrong``."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = error["loc"]
        where = name(loc) if loc else "settings"
        lines.append(f"{where}: {plain(error, known(loc[:-1]))}")
    return lines


def raise_all(problems: Iterable[str]) -> None:
    """Raise one ``ConfigError`` holding every problem (one line each, once), if there is any."""
    lines = list(dict.fromkeys(problems))
    if lines:
        raise ConfigError("\n".join(lines)) from None  # no chained error: it may hold a value


def exit_on_config_error(exc: ConfigError) -> NoReturn:
    """Print each problem on its own line and stop (exit code 2)."""
    for line in str(exc).splitlines():
        print(f"chatbridge: configuration error: {line}", file=sys.stderr)
    raise SystemExit(2)
