"""`python -m finetune.export`: see finetune/export/cli.py."""

from finetune.export.cli import main

raise SystemExit(main())
