"""``e5search serve``: the REST API over the library (FastAPI, run by uvicorn).

:mod:`serve.config` (the limits and the token), :mod:`serve.served` (the index opened once, its models shared
safely by the server's threads), :mod:`serve.jobs` (indexing jobs on a background thread), :mod:`serve.api` (the
routes) and :mod:`serve.server` (uvicorn). serve imports ``indexer`` and ``e5search.records``; nothing below
imports serve. FastAPI and uvicorn are imported only by :mod:`serve.api` and :mod:`serve.server`.
"""
