"""Stage 1: catalog ingest, prompts, teacher backends, distilabel pipeline, gates."""

import warnings

# distilabel 1.5.3 on pydantic 2.14 warns at import and on every model build;
# harmless, and not ours to fix.
warnings.filterwarnings("ignore", message="The 'default' attribute with value None")
warnings.filterwarnings("ignore", category=DeprecationWarning, module="distilabel")
