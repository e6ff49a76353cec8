"""The routes of ``e5search serve``: search, info, indexing jobs, health; OpenAPI at ``/docs``.

Every error is a JSON body ``{"error": "<one line naming the problem and the fix>"}`` with a 4xx status (5xx
only for a fault of the server's own). Routes are plain functions, so uvicorn runs them on its thread pool and
concurrent requests share the one :class:`ServedIndex` (see :mod:`serve.served` for why that is safe).
"""

from __future__ import annotations

import hmac
import logging
from typing import Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from indexer.errors import ConfigError, E5SearchError, IndexBusyError, IndexStateError, QueryError
from indexer.search.index import Filters
from serve.config import ServeConfig
from serve.guard import Guard
from serve.jobs import JobRunning, Jobs
from serve.served import Query, ServedIndex

logger = logging.getLogger(__name__)


class QueryItem(BaseModel):
    """A query of a batch with the caller's id, as a line of ``search --queries FILE.jsonl``."""

    id: str = Field(alias="_id")
    text: str


class SearchRequest(BaseModel):
    """``query`` (one) or ``queries`` (a batch), and the options of ``e5search search``."""

    model_config = ConfigDict(extra="forbid")

    query: str | None = Field(None, description="one query; the answer is one record")
    queries: list[str | QueryItem] | None = Field(
        None,
        description="a batch: strings, or {_id, text} objects; the answer is a list of records, in order",
    )
    k: int = Field(10, description="hits per query")
    mode: Literal["dense", "bm25", "hybrid"] = "hybrid"
    rerank: bool = Field(False, description="rerank with the cross-encoder the server was started with")
    lang: str | None = Field(None, description="only hits in this language (ISO 639-1)")
    type: str | None = Field(None, description="only hits from this file type (pdf, md, ...)")
    path_prefix: str | None = Field(None, description="only hits under this path (relative to the folder)")


class IndexRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(
        None,
        description="folder or file to index: absolute, or relative to the index's source folder (default)",
    )


def _queries(req: SearchRequest, config: ServeConfig) -> list[Query]:
    """The request's queries, or a 422 naming the broken limit and the fix."""
    if (req.query is None) == (req.queries is None):
        raise HTTPException(422, "give either 'query' (one query) or 'queries' (a list), exactly one of them")
    if not 1 <= req.k <= config.max_k:
        raise HTTPException(422, f"k={req.k}: must be between 1 and {config.max_k}; ask for fewer hits")
    if req.queries is not None and not 1 <= len(req.queries) <= config.max_queries:
        raise HTTPException(
            422,
            f"{len(req.queries)} queries in one request: send between 1 and {config.max_queries}; split the batch",
        )
    if req.query is not None:
        return [Query(req.query)]
    return [Query(q) if isinstance(q, str) else Query(q.text, q.id) for q in req.queries or []]


_STATUS = (
    (QueryError, 422),
    (ConfigError, 422),
    (JobRunning, 409),
    (IndexBusyError, 409),
    (IndexStateError, 503),
)


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else {}
    if first.get("type") == "json_invalid":
        return 'the body is not valid JSON: send a JSON object such as {"query": "..."}'
    if first.get("type") == "missing" and tuple(first.get("loc", ())) == ("body",):
        return 'the body is empty: send a JSON object such as {"query": "..."}'
    if first.get("type") == "model_attributes_type":
        return 'the body is not a JSON object: send one, such as {"query": "..."}, as application/json'
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    return f"{where}: {first.get('msg', 'invalid request')}; see /docs for the request format"


def create_app(served: ServedIndex, config: ServeConfig = ServeConfig(), jobs: Jobs | None = None) -> FastAPI:
    """The API over ``served``; ``jobs`` runs ``POST /index`` (one is made when not given)."""
    jobs = jobs or Jobs(served)
    app = FastAPI(
        title="e5search",
        description="Multilingual semantic search over an e5search index: the answers of `e5search search "
        "--json` and `e5search info --json`, and indexing jobs.",
        version="1",
    )
    app.add_middleware(Guard, config=config)
    bearer = HTTPBearer(auto_error=False, description="the token the server was started with")

    def authorised(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if config.token is None:
            return
        given = (credentials.credentials if credentials else "").encode()
        if not hmac.compare_digest(given, config.token.encode()):
            raise HTTPException(
                401,
                "missing or wrong token: send 'Authorization: Bearer <token>' with the token the server was "
                "started with",
                headers={"WWW-Authenticate": "Bearer"},
            )

    @app.exception_handler(HTTPException)
    def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code in (404, 405) and message in ("Not Found", "Method Not Allowed"):
            message = f"no route {request.method} {request.url.path}: see /docs for the routes"
        return _error(exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_message(exc))

    @app.exception_handler(E5SearchError)
    def refused(request: Request, exc: E5SearchError) -> JSONResponse:
        status = next((s for kind, s in _STATUS if isinstance(exc, kind)), 400)
        return _error(status, str(exc))

    @app.exception_handler(Exception)
    def failed(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("%s %s failed", request.method, request.url.path)
        return _error(500, f"internal error: {type(exc).__name__}: {exc}")

    @app.get("/health", summary="liveness (no token needed)")
    def health() -> dict:
        return {"status": "ok"}

    @app.post("/search", dependencies=[Depends(authorised)], summary="what `e5search search --json` prints")
    def search(req: SearchRequest) -> JSONResponse:
        queries = _queries(req, config)
        filters = Filters(lang=req.lang, file_type=req.type, path_prefix=req.path_prefix)
        records = served.search(queries, mode=req.mode, k=req.k, rerank=req.rerank, filters=filters)
        return JSONResponse(records[0] if req.query is not None else records)

    @app.get("/info", dependencies=[Depends(authorised)], summary="what `e5search info --json` prints")
    def info() -> dict:
        return served.info()

    @app.post(
        "/index",
        dependencies=[Depends(authorised)],
        status_code=202,
        summary="start indexing into this index",
    )
    def start_index(req: IndexRequest | None = None) -> JSONResponse:
        job = jobs.start(req.path if req else None)
        return JSONResponse(job.to_json(), status_code=202, headers={"Location": f"/jobs/{job.id}"})

    @app.get("/jobs/{job_id}", dependencies=[Depends(authorised)], summary="an indexing job's state")
    def job(job_id: str) -> dict:
        record = jobs.get(job_id)
        if record is None:
            raise HTTPException(
                404, f"no job {job_id!r} on this server: use the id POST /index answered with"
            )
        return record

    app.state.served, app.state.jobs = served, jobs
    return app
