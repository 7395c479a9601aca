"""The recommend task: interaction logs, next-item splits and metrics, classical
baselines, item vectors and semantic IDs, and the LLM recommender.

Depends on `linernotes` and `synth` (catalog readers); `finetune` and `serve`
build on it. Heavy libraries (torch, implicit) are imported inside functions.
"""
