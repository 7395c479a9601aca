"""Local services the studio starts on 127.0.0.1 (teacher servers, later Argilla)."""
