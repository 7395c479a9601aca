"""Stage 3 config: LoRA SFT of a small Llama (SmolLM2) on the published SFT rows.

Same pattern as `linernotes.config` (a dataclass, a YAML recipe, `--field`
flags on top via `load_config` / `add_dataclass_args`), so a fine-tuning run's
config is one object that its manifest records whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from linernotes.fingerprint import fingerprint

ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
BACKENDS = ("peft", "unsloth")

# Fields that say where/how the run is written or resumed, not what it learns.
_NOT_FINGERPRINTED = ("runs_dir", "run_name", "train_data", "eval_data", "save_steps",
                      "save_total_limit", "resume", "logging_steps", "num_threads")


@dataclass
class FinetuneConfig:
    """Stage 3: LoRA SFT. backend "peft" (CPU or GPU) or "unsloth" (CUDA GPU only)."""

    name: str = "finetune"
    seed: int = 17
    backend: str = "peft"  # peft | unsloth
    load_in_4bit: bool = False  # unsloth only: QLoRA-style 4-bit base (bitsandbytes, CUDA)
    base_model: str | None = None  # HF folder; default: packaged SmolLM2 (linernotes.hfmodel)
    # data: a parquet/jsonl file or a folder holding one (CLI); train_sft() takes rows directly
    train_data: str | None = None
    eval_data: str | None = None
    eval_split: float = 0.0  # fraction of train rows held out for eval when eval_data is None
    # tokens per example; longer examples are dropped (counted in the manifest). Zero-shot rows
    # (system + user + JSON answer) measure 323-513 tokens, median 431, with the SmolLM2 tokenizer
    # (golden + fixture-catalog rows): 128 dropped every one. Batches pad to their longest row,
    # so the headroom costs nothing on short rows.
    max_length: int = 1024
    packing: bool = False
    assistant_only_loss: bool = True  # loss on the final assistant turn only
    # share of general chat rows (chatterbot-corpus, finetune/general_data.py) in the final
    # training rows, to keep plain chat; 0 = liner-note rows only
    general_mix: float = 0.0
    # LoRA
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(ALL_PROJECTIONS))
    # optimisation
    lr: float = 2e-4
    lr_scheduler: str = "linear"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    epochs: float = 1.0
    max_steps: int = -1  # >0 overrides epochs
    per_device_batch_size: int = 4
    grad_accum: int = 1
    # checkpoints, logs
    save_steps: int = 50
    save_total_limit: int = 2  # complete checkpoints kept (oldest deleted after a newer one is complete)
    logging_steps: int = 1
    # CPU threads for torch (0: torch's default, one per core). On a shared box 1 is far steadier:
    # 2 threads competing with another busy process made steps 1-23 s instead of ~1.3 s.
    num_threads: int = 0
    resume: bool = True  # continue from the newest complete checkpoint of the same run
    # output
    runs_dir: str | None = None  # default: the runs root (linernotes.paths.runs_dir)
    run_name: str | None = None  # default: finetune-<config hash>-<data hash>

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"config field 'backend': expected one of {BACKENDS}, got {self.backend!r}")
        if not 0.0 <= self.eval_split < 1.0:
            raise ValueError(f"config field 'eval_split': expected 0 <= x < 1, got {self.eval_split!r}")
        if self.max_length < 8:
            raise ValueError(f"config field 'max_length': too small ({self.max_length})")
        if self.load_in_4bit and self.backend != "unsloth":
            raise ValueError("config field 'load_in_4bit': only with backend 'unsloth' (a CUDA GPU)")

    def fingerprint(self) -> str:
        """Hash of everything that changes the trained adapter (not where it is written)."""
        # load_in_4bit and general_mix were added later: off keeps the names of earlier runs
        drop = _NOT_FINGERPRINTED + (() if self.load_in_4bit else ("load_in_4bit",)) \
            + (() if self.general_mix else ("general_mix",))
        return fingerprint(self, drop=drop)


_DPO_NOT_FINGERPRINTED = ("runs_dir", "run_name", "preference_data", "save_steps", "save_total_limit",
                          "resume", "logging_steps", "num_threads")


@dataclass
class DPOStageConfig:
    """Stage 3b: DPO on the labelers' preference pairs, continuing the SFT adapter.

    The SFT adapter is trained further; the reference is a frozen copy of that
    same adapter (TRL loads it as adapter "ref"), so DPO moves away from the SFT
    model, not from the untuned base.
    """

    name: str = "dpo"
    seed: int = 17
    backend: str = "peft"  # peft only: DPO has no Unsloth path (see __post_init__)
    sft_run: str | None = None  # finetune run folder (its adapter/ is the starting point); default: newest
    preference_data: str | None = None  # published dataset folder / parquet / jsonl with prompt, chosen, rejected
    beta: float = 0.1
    loss_type: str = "sigmoid"
    max_length: int = 512
    lr: float = 5e-5
    lr_scheduler: str = "linear"
    warmup_steps: int = 0
    epochs: float = 1.0
    max_steps: int = -1
    per_device_batch_size: int = 2
    grad_accum: int = 1
    save_steps: int = 50
    save_total_limit: int = 2
    logging_steps: int = 1
    num_threads: int = 0
    resume: bool = True
    runs_dir: str | None = None
    run_name: str | None = None

    def __post_init__(self) -> None:
        if self.backend == "unsloth":
            # DPO trains with PEFT + TRL (on the CUDA GPU when there is one); accepting "unsloth"
            # here once ran PEFT and wrote "unsloth" in the manifest.
            raise ValueError("config field 'backend': 'unsloth' is for SFT only; DPO trains with PEFT + "
                             "TRL (on the CUDA GPU when there is one): set backend: peft")
        if self.backend not in BACKENDS:
            raise ValueError(f"config field 'backend': expected one of {BACKENDS}, got {self.backend!r}")
        if self.beta <= 0:
            raise ValueError(f"config field 'beta': expected > 0, got {self.beta!r}")

    def fingerprint(self) -> str:
        return fingerprint(self, drop=_DPO_NOT_FINGERPRINTED)


@dataclass
class EvalConfig:
    """Report card: base, tuned and teacher on held-out (item, listener) pairs, a pairwise judge,
    the multiple-choice guardrail (MMLU, HellaSwag, ARC, PIQA) and a general-chat check.

    Costs on the 2-core box are in finetune/evaluate.py's docstring; every stage has a size here
    (0 skips it) so the demo can fit its budget."""

    name: str = "eval"
    run: str | None = None  # finetune or dpo run folder (its adapter/); default: the newest
    catalog_dir: str | None = None  # default: the ingested catalog (LINERNOTES_HOME/catalog)
    item_types: list[str] = field(default_factory=lambda: ["music", "book", "podcast"])
    n_per_type: int = 50  # held-out (item, listener) pairs per item type
    seed: int = 101  # held-out pairs are planned with this seed, then any training item is excluded
    max_new_tokens: int = 96
    batch_size: int = 8
    # teacher notes for the same pairs: "auto" (the synth run's first attempts where it has the
    # pair, the endpoint for the rest), "synth" (only those), "generate" (endpoint only), "none"
    teacher: str = "auto"
    synth_run: str | None = None  # default: the newest complete synth run
    teacher_backend: str = "llamacpp"  # a synth backend (synth/backends.py); llamacpp: the embedded teacher
    teacher_base_url: str | None = None  # a running OpenAI-compatible teacher instead of starting one
    teacher_model: str | None = None
    teacher_api_key_env: str | None = None  # env var holding the key for teacher_base_url
    teacher_concurrency: int = 2
    # pairwise judge (finetune/judge.py): pairs judged per comparison (tuned vs base, tuned vs
    # teacher), each asked twice with positions swapped; 0 skips it. Default judge: the teacher endpoint.
    judge_n: int = 150
    judge_base_url: str | None = None
    judge_model: str | None = None
    judge_api_key_env: str = "OPENAI_API_KEY"
    # guardrail (finetune/guardrail.py + finetune/mmlu.py), base vs tuned
    mmlu_n: int = 100  # 0 skips MMLU
    mmlu_seed: int = 0
    guardrail_tasks: list[str] = field(default_factory=lambda: ["hellaswag", "arc_easy", "arc_challenge", "piqa"])
    guardrail_n: int = 100  # questions per task; 0 skips them
    guardrail_seed: int = 0
    # general-chat check (finetune/chat_check.py): prompts (of 50) and tokens per answer; 0 skips it
    chat_n: int = 50
    chat_max_new_tokens: int = 96
    examples: int = 6  # notes shown side by side in the report
    num_threads: int = 0

    def __post_init__(self) -> None:
        if self.n_per_type < 1:
            raise ValueError(f"config field 'n_per_type': expected >= 1, got {self.n_per_type!r}")
        if self.teacher not in ("auto", "synth", "generate", "none"):
            raise ValueError(f"config field 'teacher': expected auto | synth | generate | none, got {self.teacher!r}")
        for name in ("judge_n", "mmlu_n", "guardrail_n", "chat_n"):
            if getattr(self, name) < 0:
                raise ValueError(f"config field {name!r}: expected >= 0, got {getattr(self, name)!r}")

    def fingerprint(self) -> str:
        return fingerprint(self, drop=("run", "num_threads", "teacher_api_key_env", "judge_api_key_env",
                                       "teacher_concurrency"))
