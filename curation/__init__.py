"""Stage 2: embed, dedupe, cluster, map, and sample explanations for expert review.

`curation.stage.run_curate(CurateConfig)` runs the whole stage over a synth run.
"""
