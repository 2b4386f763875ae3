"""HTTP serving: a REST API with dynamic batching and an attention explorer page.

Needs the ``serve`` extra (``pip install 'softalign[serve]'``: FastAPI and uvicorn).
"""

from softalign.serve.app import create_app, serve
from softalign.serve.limits import ServeLimits

__all__ = ["ServeLimits", "create_app", "serve"]
