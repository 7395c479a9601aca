"""`linernotes finetune|dpo|eval|export` argument parsers."""

from __future__ import annotations


def add_parsers(sub) -> None:
    """Register the stage-3 commands on the top-level subparsers."""
