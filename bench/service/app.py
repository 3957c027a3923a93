"""The HTTP API and web page over a `Catalogue` (FastAPI, run by uvicorn).

FastAPI rather than bare Starlette: request bodies and query parameters are typed (pydantic
validates them and names the field that is wrong) and the OpenAPI description at
`/openapi.json` is generated from the same types. Every error a client can cause is a 4xx
JSON body `{"error": {"status", "field", "message"}}`: unknown user, item or model (404),
a body or query that fails validation (422), a model that cannot do what is asked (409), a
body over the size limit (413). A request names models by their served name only, never a
file. Handlers are coroutines that score inline: one known or new user costs a sparse
gather or a small dense product (well under a millisecond), less than a hop to a worker
thread, and the models that must score every user at once did so when the service started.
"""

from __future__ import annotations

import math
import os
from importlib import resources
from typing import Annotated

import numpy as np
from aebench.datasets.features import FeatureValueError
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from .. import recommend
from .served import Catalogue, Served

API = "/v1"
MAX_K = 100
MAX_BODY = 256 * 1024    # bytes: a few thousand ratings
MAX_RATINGS = 5000


class ClientError(Exception):
    def __init__(self, status: int, field: str, message: str):
        super().__init__(message)
        self.status, self.field, self.message = status, field, message


def error(status: int, field: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "field": field, "message": message}},
                        status_code=status)


class Rating(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: int | str = Field(description="the item's id as the ratings file writes it")
    rating: float = Field(allow_inf_nan=False, description="on the dataset's rating scale")


class NewUser(BaseModel):
    """A person the models never saw: their ratings (or, for implicit feedback, the items
    they interacted with), answered by every variant that can fold a new row in."""

    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(None, description="a served model (default: the first that "
                                                "folds a new user in)")
    k: int = Field(10, ge=1, le=MAX_K)
    ratings: list[Rating] | None = Field(None, min_length=1, max_length=MAX_RATINGS)
    items: list[int | str] | None = Field(None, min_length=1, max_length=MAX_RATINGS,
                                          description="interactions, each read as the top "
                                                      "of the rating scale")
    exclude: list[int | str] = Field([], max_length=MAX_RATINGS,
                                     description="items not to recommend that the models "
                                                 "do not read (seen, but not rated)")
    profile: dict[str, str | float | list[str]] | None = Field(
        None, max_length=64,
        description="what the person says of themselves, by user feature (`GET "
                    "/api/v1/profile` lists them: ML-1M's gender, age group, occupation "
                    "and zip region): read by the models that read user features; with a "
                    "profile, ratings and items may both be left out (a visitor who has "
                    "rated nothing)")


class BodyLimit:
    """Refuses a request body over `limit` bytes with 413: by its Content-Length before it is
    read, or, for a streamed (chunked) body, read up to the limit and then replayed to the
    app (pure ASGI middleware)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_big = error(413, "body", f"the body is over {self.limit} bytes")
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.limit:
                return await too_big(scope, receive, send)
            return await self.app(scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.limit:
                return await too_big(scope, receive, send)
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _field(loc) -> str:
    """`ratings[2].rating` from pydantic's location ("body", "ratings", 2, "rating")."""
    out = ""
    for part in loc[1:] if loc and loc[0] in ("body", "query", "path") else loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or (loc[0] if loc else "body")


def create_app(cat: Catalogue, max_body: int = MAX_BODY) -> FastAPI:
    app = FastAPI(title="aebench recommendations", version="1",
                  description=f"Models trained on {cat.split.dataset} ({cat.split.name}, "
                              f"seed {cat.split.seed}), served by `python -m bench serve`.")
    app.add_middleware(BodyLimit, limit=max_body)
    first = next(iter(cat.models))
    scale = cat.split.scale
    top = scale[1] if scale else 1.0  # what an interaction, or a one-film user, rates

    @app.exception_handler(ClientError)
    async def client_error(request: Request, exc: ClientError):
        return error(exc.status, exc.field, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        problem = exc.errors()[0]
        if problem.get("type") == "json_invalid":
            return error(422, "body", f"body: not JSON ({problem.get('ctx', {}).get('error')}"
                                      f" at character {problem['loc'][-1]})")
        field = _field(problem.get("loc", ()))
        return error(422, field, f"{field}: {problem.get('msg', 'invalid')}")

    folders = [n for n, m in cat.models.items() if m.folds_in]

    def served(name: str | None, new_user: bool = False) -> Served:
        """The model a request names; none named: the first served (for a new user, the
        first that folds one in)."""
        name = name or (folders[0] if new_user and folders else first)
        if name not in cat.models:
            raise ClientError(404, "model", f"unknown model {name!r}; served: "
                                            f"{', '.join(cat.models)}")
        return cat.models[name]

    def folding(s: Served) -> None:
        if not s.folds_in:
            raise ClientError(409, "model", f"{s.name} {recommend.fold_in_refusal(s.scorer.cfg)}"
                                            f"; models that fold a new user in: "
                                            f"{', '.join(folders) or 'none'}")

    def answer(s: Served, order, scores, **head) -> JSONResponse:
        return JSONResponse({**head, "model": s.name, "record_id": s.record_id,
                             "items": cat.describe(order, scores)})

    def item(value, field: str, status: int = 422) -> int:
        try:
            return cat.item_index(value)
        except KeyError:
            raise ClientError(status, field, f"{field}: unknown item {value!r} in "
                                             f"{cat.split.dataset}") from None

    @app.get("/healthz", tags=["service"])
    async def healthz():
        """Liveness, with the process's resident memory (what a soak test watches)."""
        return {"status": "ok", "models": len(cat.models), "rss_bytes": _rss()}

    @app.get(f"{API}/users", tags=["recommendations"])
    async def list_users(offset: Annotated[int, Query(ge=0)] = 0,
                         limit: Annotated[int, Query(ge=1, le=10_000)] = 100):
        """Known users' ids, as the ratings file writes them, in order."""
        labels = cat.data.labels.user
        ids = cat.split.user_ids[offset:offset + limit]
        return {"total": len(cat.split.user_ids),
                "users": [str(labels[i - 1]) if labels is not None else int(i) for i in ids]}

    @app.get(f"{API}/models", tags=["models"])
    async def list_models():
        """The variants served, with the dataset and split they trained on, their recipe,
        precision and test figures from their records."""
        out = []
        for s in cat.models.values():
            r = s.record
            out.append({"name": s.name, "model": r.model, "record_id": s.record_id,
                        "dataset": r.dataset, "split": _plain(r.split), "seed": r.seed,
                        "mode": r.mode, "recipe": _plain(r.recipe),
                        "precision": _plain(r.precision), "kind": r.kind,
                        "feedback": s.scorer.cfg.feedback, "folds_in": s.folds_in,
                        "test_metrics": {k: v for k, v in r.metrics.items()
                                         if isinstance(v, int | float) and math.isfinite(v)}})
        return {"dataset": cat.split.dataset, "split": cat.split.name,
                "fingerprint": cat.split.fingerprint,
                "scale": list(scale) if scale else None, "models": out}

    @app.get(f"{API}/users/{{user_id}}/recommendations", tags=["recommendations"])
    async def user_recommendations(user_id: str, model: str | None = None,
                                   k: Annotated[int, Query(ge=1, le=MAX_K)] = 10):
        """The user's top-k items among those they never rated (in any part of the split),
        scored from their training ratings as evaluation scores them."""
        s = served(model)
        try:
            u = cat.user_index(user_id)
        except KeyError:
            raise ClientError(404, "user_id", f"unknown user {user_id!r} in "
                                              f"{cat.split.dataset}") from None
        rated = s.scorer.rated(u)
        order, scores = recommend.top_k(s.scorer.user(u), rated, k)
        return answer(s, order, scores, user=user_id, excluded=len(rated))

    @app.post(f"{API}/recommendations", tags=["recommendations"])
    async def new_user(body: NewUser):
        """A new user's top-k from their ratings, by a model that folds a row in (409 from
        one that keeps parameters per training user)."""
        s = served(body.model, new_user=True)
        folding(s)
        if body.ratings is not None and body.items is not None:
            raise ClientError(422, "ratings", "give either ratings or items (interactions), "
                                              "not both")
        if body.ratings is None and body.items is None and body.profile is None:
            raise ClientError(422, "ratings", "give ratings, items (interactions) or a "
                                              "profile")
        profile = None
        if body.profile is not None:
            table = cat.data.user_features
            if table is None:
                raise ClientError(422, "profile", f"profile: {cat.split.dataset} has no user "
                                                  f"features")
            try:
                profile = table.encode_values(body.profile)
            except FeatureValueError as exc:
                raise ClientError(422, f"profile.{exc.column}", f"profile.{exc}") from None
        if body.ratings is not None:
            pairs = [(f"ratings[{j}]", r.item, r.rating) for j, r in enumerate(body.ratings)]
        else:
            pairs = [(f"items[{j}]", i, top) for j, i in enumerate(body.items or [])]
        cols, values, where = [], [], {}
        for field, value, rating in pairs:
            at = field + (".item" if body.ratings is not None else "")
            i = item(value, at)
            if i in where:
                raise ClientError(422, at, f"{at}: item {value!r} is also {where[i]}")
            if body.ratings is not None:
                low, high = scale if scale else (1.0, 1.0)
                if not low <= rating <= high:
                    raise ClientError(422, f"{field}.rating",
                                      f"{field}.rating: {rating:g} is off the scale "
                                      f"[{low:g}, {high:g}] of {cat.split.dataset}")
            where[i] = field
            cols.append(i)
            values.append(rating)
        seen = [item(value, f"exclude[{j}]") for j, value in enumerate(body.exclude)]
        scores = s.scorer.fold_in(np.array(cols, dtype=np.int64), np.array(values), profile)
        order, best = recommend.top_k(scores, np.array(cols + seen, dtype=np.int64), body.k)
        return answer(s, order, best, read=len(cols),
                      profile_read=profile is not None and s.scorer.reads_profile)

    @app.get(f"{API}/profile", tags=["recommendations"])
    async def profile_fields():
        """The user features a new user's `profile` may give, with the values each knows
        (a number for a numeric one), and the models that read them."""
        table = cat.data.user_features
        fields = [] if table is None else [
            {"name": c.name, "kind": c.kind, "values": c.choices()} for c in table.columns]
        return {"dataset": cat.split.dataset, "fields": fields,
                "read_by": [n for n, m in cat.models.items()
                            if m.folds_in and m.scorer.reads_profile]}

    @app.get(f"{API}/items/{{item_id}}/similar", tags=["items"])
    async def similar(item_id: str, model: str | None = None,
                      k: Annotated[int, Query(ge=1, le=MAX_K)] = 10):
        """The model's recommendations for a user who rated only this item, at the top of
        the scale: for the item-item families (EASE, SLIM, ItemKNN, RP3beta, EDLAE) the
        item's row of weights, for an autoencoder what it infers from one film."""
        s = served(model, new_user=True)
        folding(s)
        i = item(item_id, "item_id", 404)
        order, scores = recommend.top_k(s.scorer.fold_in(np.array([i]), np.array([top])),
                                        np.array([i]), k)
        return answer(s, order, scores, item=cat.item_id(i), title=cat.titles[i])

    @app.get(f"{API}/items", tags=["items"])
    async def find_items(query: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
                         limit: Annotated[int, Query(ge=1, le=1000)] = 20):
        """Films whose title holds every word of the query (every film without one), the
        most rated first."""
        found = cat.search(query or "", limit)
        return {"query": query, "items": [{"item": cat.item_id(i), "title": cat.titles[i],
                                           "genres": cat.genres[i].split("|")}
                                          for i in found]}

    page = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        return page

    return app


def _rss() -> int | None:
    """This process's resident set in bytes (Linux's /proc; None elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _plain(part):
    from aebench.bench.runs.records import _plain as plain

    return plain(part) if part is not None else None
