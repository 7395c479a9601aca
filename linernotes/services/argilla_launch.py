"""Run argilla-server's CLI with the osmem search engine swapped in.

Run by the Argilla venv's interpreter *by path* (not `-m`): its folder lands on
sys.path, so `argilla_engine` imports as a top-level module without importing
the `linernotes` package (whose dependencies the Argilla venv lacks).

    <argilla-venv>/bin/python .../argilla_launch.py start --host 127.0.0.1 --port 6900
    <argilla-venv>/bin/python .../argilla_launch.py worker --num-workers 1
    <argilla-venv>/bin/python .../argilla_launch.py --batch '[["database","migrate"], [...]]'

`--batch` runs several CLI commands in one process (saves ~3 s of imports
each); each command is an argument list for `python -m argilla_server`.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    from argilla_engine import install_engine  # noqa: E402 (needs the venv's argilla_server)

    install_engine()
    from argilla_server.cli import app

    if argv[:1] == ["--batch"]:
        for cmd in json.loads(argv[1]):
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
