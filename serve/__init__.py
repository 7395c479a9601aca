"""Stage 4: the bundled endpoint.

`linernotes serve [MODEL]` puts a Starlette app (auth, limits, metrics, the
`/v1/explain` domain route) in front of an engine subprocess: llama.cpp's
server on CPU, vLLM on a CUDA GPU. See `serve.app` for the routes and
`start_endpoint` / `client_examples` for the Python API.
"""
