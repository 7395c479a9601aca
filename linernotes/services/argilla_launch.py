"""Run argilla-server's CLI with the osmem search engine swapped in.

Run by the Argilla venv's interpreter *by path* (not `-m`): its folder lands on
sys.path, so `argilla_engine` imports as a top-level module without importing
the `linernotes` package (whose dependencies the Argilla venv lacks).

    <argilla-venv>/bin/python .../argilla_launch.py start --host 127.0.0.1 --port 6900
    <argilla-venv>/bin/python .../argilla_launch.py worker --num-workers 1
    <argilla-venv>/bin/python .../argilla_launch.py --batch - < commands.json

`--batch -` reads a JSON list of commands from stdin and runs them in one
process (saves ~3 s of imports each); each command is an argument list for
`python -m argilla_server`. Stdin, not argv: the user commands carry
passwords and API keys, and argv is visible to everyone in `ps`. What
argilla-server echoes (it prints each new user's API key) is masked.
"""

from __future__ import annotations

import json
import sys

SECRET_FLAGS = ("--password", "--api-key")


def secret_values(commands: list[list[str]]) -> list[str]:
    """The values of --password/--api-key in a batch (to mask in the log)."""
    return [cmd[i + 1] for cmd in commands for i, a in enumerate(cmd[:-1]) if a in SECRET_FLAGS]


def main(argv: list[str]) -> int:
    commands = None
    if argv[:1] == ["--batch"]:
        if argv[1:] != ["-"]:
            print("--batch takes '-' (the commands come on stdin, never on the command line)",
                  file=sys.stderr)
            return 2
        from credentials import RedactingStream  # same folder; standard library only

        commands = json.loads(sys.stdin.read())
        values = secret_values(commands)
        # Before argilla_server is imported, so loggers it sets up write through the mask too.
        sys.stdout, sys.stderr = RedactingStream(sys.stdout, values), RedactingStream(sys.stderr, values)

    from argilla_engine import install_engine  # noqa: E402 (needs the venv's argilla_server)

    install_engine()
    from argilla_server.cli import app

    if commands is not None:
        for cmd in commands:
            print("argilla_server " + " ".join(cmd[:3]), flush=True)  # no passwords/keys in the log
            try:
                app(args=cmd, prog_name="argilla_server", standalone_mode=False)
            except SystemExit as e:  # typer may exit 0 after a command
                if e.code not in (0, None):
                    return int(e.code)
        return 0
    app(args=argv, prog_name="argilla_server")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
