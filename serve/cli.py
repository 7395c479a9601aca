"""`linernotes serve` argument parser (filled in by the serve stage, issue 6)."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    """Register `linernotes serve` on the top-level subparsers."""
    p = sub.add_parser("serve", help="serve a model (OpenAI-compatible endpoint)")
    p.set_defaults(fn=lambda args: print("serve: not built yet") or 2)
