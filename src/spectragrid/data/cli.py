"""`spectragrid COMMAND ...`: one console command whose subcommands live in their stages.

Each subcommand is a function `main(argv) -> int` registered in
pyproject.toml under the entry-point group `spectragrid.commands`, e.g.

    [project.entry-points."spectragrid.commands"]
    init = "spectragrid.data.study_init:main"

so a stage adds a command with one line there, and this dispatcher imports
no stage: it loads only the command that is asked for. The first line of a
command module's docstring is its one-line help.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import import_module
from importlib.metadata import EntryPoint, entry_points

__all__ = ["GROUP", "main"]

GROUP = "spectragrid.commands"


def _commands() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in sorted(entry_points(group=GROUP), key=lambda ep: ep.name)}


def _summary(entry: EntryPoint) -> str:
    """The first line of the command module's docstring (imports that module only)."""
    doc = (import_module(entry.module).__doc__ or "").strip().splitlines()
    return doc[0] if doc else ""


def _usage(commands: dict[str, EntryPoint]) -> str:
    lines = ["usage: spectragrid COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<8} {_summary(entry)}" for name, entry in commands.items()]
    lines += ["", "`spectragrid COMMAND --help` describes a command's arguments."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    commands = _commands()
    if not args or args[0] in ("-h", "--help"):
        print(_usage(commands))
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in commands:
        known = ", ".join(commands) or "(none installed)"
        print(f"spectragrid: unknown command {name!r}; commands: {known}", file=sys.stderr)
        return 2
    return int(commands[name].load()(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
