"""The HTTP service's endpoints, one :class:`fastapi.APIRouter` module per concern.

- :mod:`~gan4rec.serve.routers.recommend`: ``GET``/``POST /recommend``;
- :mod:`~gan4rec.serve.routers.items`: ``/explain``, ``/similar``, ``/history``, ``/items``;
- :mod:`~gan4rec.serve.routers.new_items`: ``POST /items``, ``DELETE /items/{item}`` (new items);
- :mod:`~gan4rec.serve.routers.admin`: ``POST /admin/reload``;
- :mod:`~gan4rec.serve.routers.system`: ``/healthz``, ``/readyz``, ``/info``, ``/metrics``, the web page.

:func:`gan4rec.serve.app.create_app` includes them, adding the API-key dependencies.
"""

__all__: list[str] = []
