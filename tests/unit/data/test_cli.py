"""The `spectragrid` command: subcommands registered by their stages."""

import subprocess
import sys

from spectragrid.data.cli import main


def test_help_lists_the_registered_commands(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: spectragrid COMMAND [ARGS...]")
    assert "  init     Write a commented starting config for your raw files" in out


def test_an_unknown_command_is_named(capsys) -> None:
    assert main(["serv"]) == 2
    assert capsys.readouterr().err.startswith("spectragrid: unknown command 'serv'; commands: ")


def test_the_console_script_dispatches_to_init(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "spectragrid.data.cli", "init", str(tmp_path / "none.csv")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr == f"spectragrid init: error: {tmp_path / 'none.csv'}: no such file\n"
