"""The domain core every stage shares: what a liner note is asked for and how it is judged.

- `prompts`: the versioned prompt template + editors' golden examples -> chat messages
  (catalog text is data, never instructions).
- `parsing`: a model's answer -> {"explanation", "facts_used"}.
- `gates`: grounding, style and safety verdicts with reasons.
- `gate_index`: the grounding gate's catalog index, cached beside an ingested catalog.

synth, curation, finetune (eval) and serve all import these, so a row is asked
for and judged the same way wherever it is generated.
"""
