"""Stage 4 (not built yet, issue 6): the bundled OpenAI-compatible endpoint."""
