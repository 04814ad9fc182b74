"""The studio's HTTP API, `/api/v1`, served beside the Streamlit app by `serve.py`.

A front-end that is not the Streamlit app (a phone app, a museum's web page, a photo booth, the
seed's own front-end) trains and generates here with the seed's field names, over the same job
interface as the pages and the command line (`engine.backends`). Modules:

    api.app           the routes (FastAPI) and `api_mount(settings)` for serve.py
    api.models        the pydantic models that validate requests and write the OpenAPI document
    api.problems      errors as RFC 9457 problem+json, from the engine's one exception tree
    api.access        token, loopback, rate limits and body size, in front of every route
    api.catalog_view  the catalog and its thumbnails as a front-end reads them
    api.language      the language of an answer, and engine messages put into it

Nothing here imports Streamlit. docs/api.md has the examples.
"""

from api.app import PREFIX, api_mount, create_app

__all__ = ["api_mount", "create_app", "PREFIX"]
