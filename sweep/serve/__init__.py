"""Serving a sweep: the Ray Serve app (``app``; its ``options``, ``sql`` runner and ``engines``),
its command line (``cli``), ``/solve`` (``solve``) and the OpenAI-compatible routes
(``openai_request``, ``openai_choice``, ``openai_api``).

    python -m sweep.serve results/smoke [--port 8000]
    serve run sweep.serve:app_builder output=results/smoke
"""

from sweep.serve.app import app_builder, build_app

__all__ = ["app_builder", "build_app"]
