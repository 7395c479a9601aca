"""Stage 3 (not built yet, issue 5): LoRA SFT/DPO, evaluation, GGUF export."""
