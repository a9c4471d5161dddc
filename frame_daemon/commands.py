"""Every command the loop takes, as one table: a row names the command, parses and checks its
payload, and says which handler carries it out.

The payload parsers are pure and run on paho's thread, so a bad payload never reaches the loop; a
setting's check is the config's own declaration (`field_problem`), so a value the config file
would refuse is refused here with the same words. The handlers belong to the loop (`Daemon`,
`SlideshowControl`), which builds its `CommandTable` at start-up; the topics Home Assistant may
publish to are the rows that have a parser.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any, get_origin, get_type_hints

from frame_daemon.config import field_problem
from frame_daemon.events import Command, CommandName

log = logging.getLogger(__name__)

Parser = Callable[[str], Any]  # payload text -> the command's value; CommandError if refused
Handler = Callable[[Any], None]  # runs on the loop thread with the parsed value


class CommandError(ValueError):
    """A command that cannot be accepted; the message says why, for `last error`."""


@dataclass(frozen=True, slots=True)
class CommandRow:
    name: CommandName
    handle: Handler
    parse: Parser | None = None  # None: posted by the daemon itself only
    echo: bool = True  # publish the state afterwards, so Home Assistant shows the truth


class CommandTable:
    """The rows, by name; immutable once built, so paho's thread may parse while the loop runs."""

    def __init__(self, rows: Iterable[CommandRow]) -> None:
        self._rows: dict[CommandName, CommandRow] = {}
        for row in rows:
            if row.name in self._rows:
                raise ValueError(f"command {row.name} has two rows")
            self._rows[row.name] = row

    def accepted(self) -> list[CommandName]:
        """The commands taken from outside (each has a parser), in table order."""
        return [name for name, row in self._rows.items() if row.parse is not None]

    def parse(self, name: CommandName, payload: bytes) -> Command:
        """A payload from outside as a validated Command; CommandError with a one-line reason."""
        row = self._rows[name]
        if row.parse is None:
            raise CommandError("not a command taken from outside")
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise CommandError("payload is not UTF-8 text") from None
        return Command(name, row.parse(text))

    def dispatch(self, cmd: Command) -> bool:
        """Run the command's handler; True if the state should be published after it. A
        CommandError from the handler (refused in the light of the loop's state) propagates."""
        row = self._rows.get(cmd.name)  # type: ignore[call-overload]
        if row is None:
            log.warning("no handler for command %r; ignored", cmd.name)
            return False
        row.handle(cmd.value)
        return row.echo


# ---------------------------------------------------------------------- parsers
def on_off(payload: str) -> bool:
    value = payload.strip().upper()
    if value not in ("ON", "OFF"):
        raise CommandError(f"expected ON or OFF, got {payload[:40]!r}")
    return value == "ON"


def press(payload: str) -> None:
    if payload.strip().upper() != "PRESS":
        raise CommandError(f"expected PRESS, got {payload[:40]!r}")


def setting(section: type, key: str) -> Parser:
    """A parser for one config key: the text read as the key's declared type, then the key's
    own check. (Cross-key rules need the other settings: the settings store applies them.)"""
    if key not in {f.name for f in fields(section)}:
        raise ValueError(f"{section.__name__} has no key {key!r}")
    typ = get_type_hints(section)[key]
    if typ not in (float, str) and get_origin(typ) is not tuple:
        raise ValueError(f"{section.__name__}.{key}: no command parser for {typ}")

    def parse(payload: str) -> Any:
        text = payload.strip()
        if typ is float:
            try:
                value: Any = float(text)
            except ValueError:
                raise CommandError(f"expected a number, got {payload[:40]!r}") from None
        elif typ is str:  # a choice (mode, order): their names are lower case
            value = text.lower()
        else:  # a list: "Jazz, Ambient" (or ';' between)
            value = tuple(g.strip() for g in payload.replace(";", ",").split(",") if g.strip())
        problem = field_problem(section, key, value)
        if problem:
            raise CommandError(f"{problem}; got {payload[:40]!r}")
        return value

    return parse
