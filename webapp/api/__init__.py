"""The APIs: the status JSON the progress page polls (``/api``), Easel's own API (``/api/v1``), and the
OpenAI Images (``/v1``) and AUTOMATIC1111 (``/sdapi/v1``) dialects, all behind one token gate."""
from flask import Flask

from .routes import bp


def register_apis(app: Flask) -> None:
    """Register the token-authenticated APIs and their docs page."""
    from . import automatic1111, docs, openai_images, v1

    v1.register(app)
    docs.register(app)
    openai_images.register(app)
    automatic1111.register(app)


__all__ = ["bp", "register_apis"]
