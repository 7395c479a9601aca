"""Stage 1: catalog ingest, prompts, teacher backends, distilabel pipeline, gates."""
