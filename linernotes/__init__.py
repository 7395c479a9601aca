"""linernotes: a studio for grounded, personalised recommendation explanations.

This package is the shared core (record types, config, run directories, assets,
CLI). The stages live beside it: synth/, curation/, finetune/, serve/.
Importing it never loads torch, vLLM or other heavy packages.
"""

__version__ = "0.1.0"
