"""The HTTP API (aiohttp): app factory, routes, middlewares, keys, and the ``serve`` loop.

::

    app.py         create_app(settings): middlewares, routes, the runtime in cleanup_ctx
    routes.py      the handlers (thin: read body, call the service, write the model)
    middleware.py  error envelope, request ids, access log, metrics, 404/405 before auth
    bodies.py      bodies and query flags into models, every failure one of our errors
    access.py      API keys, or the embedded default's key for this run and its curl example
    readiness.py   /readyz semantics (ready / degraded / not_ready)
    schemas.py     the API's own shapes (error envelope, x12 interpret bodies, readiness)
    serve.py       `eligibility-svc serve`: listen, print the banner, drain on SIGTERM

Import ``create_app`` from ``eligibility_svc.api.app`` (this package imports nothing itself, so
``openapi.py`` can use ``schemas`` without pulling in the app).
"""
