"""`python -m serve ...`: the endpoint in the foreground (same flags as `linernotes serve`)."""

from serve.cli import main

raise SystemExit(main())
