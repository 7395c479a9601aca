"""Stage 3 (issue 5, in progress): LoRA SFT of the student on CPU (PEFT + TRL) works:
`finetune.train.train_sft(FinetuneConfig, rows)`, atomic checkpoints, SIGKILL resume.
MMLU guardrail data + scorer: `finetune/mmlu.py`. Not built yet: DPO, the report card, GGUF export and its
gate, the CLI commands, the marimo app, the GPU (Unsloth) check and the benchmark."""
