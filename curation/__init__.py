"""Stage 2 (not built yet, issue 3): embed, dedupe, cluster, map, sample for review."""
