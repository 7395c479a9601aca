"""Stage 3: LoRA SFT (`train`), DPO (`dpo`), the report card with its MMLU guardrail
(`evaluate`, `mmlu`, `card`), merge + GGUF export + export gate (`export`), and the
CLI commands (`cli`: finetune, dpo, eval, export). Backend `peft` (PEFT + TRL, CPU or
GPU) everywhere; `unsloth` on a CUDA GPU only, never imported without one."""
