"""Every endpoint and every client error, through uvicorn on 127.0.0.1 and an HTTP client."""

from __future__ import annotations

import json

import numpy as np
import pytest
from aebench.bench import recommend
from aebench.bench.runs import records


def items(answer) -> list:
    return [r["item"] for r in answer["items"]]


def test_health_and_models_say_what_is_served_from_the_records(client, ml100k_run):
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["models"] == 4 and health["rss_bytes"] > 1e8
    users = client.get("/v1/users", params={"offset": 940, "limit": 10}).json()
    assert users == {"total": 943, "users": [941, 942, 943]}
    served = client.get("/v1/models").json()
    assert served["dataset"] == "ml-100k" and served["split"] == "u1"
    by_name = {m["name"]: m for m in served["models"]}
    assert set(by_name) == {"ease", "mult-vae", "mf", "autorec-i"}
    for r in records.read(ml100k_run / "runs.jsonl"):
        m = by_name[r.model]
        assert m["record_id"] == (ml100k_run / r.weights).stem
        assert m["split"]["fingerprint"] == r.split.fingerprint == served["fingerprint"]
        assert m["recipe"]["name"] == "default" and m["precision"] == {"loss": "fp32",
                                                                         "score": "fp32"}
        assert m["test_metrics"]["ndcg@10"] == pytest.approx(r.metrics["ndcg@10"])
    assert {n for n, m in by_name.items() if m["folds_in"]} == {"ease", "mult-vae"}
    assert "/v1/recommendations" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("name", ["ease", "mult-vae", "mf", "autorec-i"])
def test_a_known_user_gets_what_recommend_gives(name, client, catalogue, ml100k):
    """One scoring path: the service's top-k for user 1 is `recommend`'s, for a model of each
    kind (closed form, autoencoder, a vector per user, item rows)."""
    s = catalogue.models[name].scorer
    expected = recommend.recommend(s.model, s.cfg, s.split, ml100k.items, 1, 10)
    got = client.get("/v1/users/1/recommendations", params={"model": name, "k": 10}).json()
    assert items(got) == expected["movie_id"].tolist()
    assert [r["title"] for r in got["items"]] == expected["title"].tolist()
    assert np.allclose([r["score"] for r in got["items"]], expected["score"], rtol=1e-5)
    u = s.split.user_index(1)
    seen = set(s.split.item_ids[np.r_[s.split.train[u].indices, s.split.test[u].indices]])
    assert got["excluded"] == len(seen) and not seen & set(items(got))
    assert got["record_id"] == catalogue.models[name].record_id


@pytest.mark.parametrize("name", ["ease", "mult-vae"])
def test_a_training_user_folded_in_from_their_own_row_gets_their_top_k(name, client,
                                                                       catalogue):
    """Posting user 7's training ratings (their test items excluded, as `recommend` excludes
    them) gives the same top 10 as asking for user 7."""
    split = catalogue.split
    u = split.user_index(7)
    row = split.train[u]
    body = {"model": name, "k": 10,
            "ratings": [{"item": int(split.item_ids[i]), "rating": float(v)}
                        for i, v in zip(row.indices, row.data)],
            "exclude": [int(split.item_ids[i]) for i in split.test[u].indices]}
    folded = client.post("/v1/recommendations", json=body)
    assert folded.status_code == 200, folded.text
    known = client.get("/v1/users/7/recommendations", params={"model": name}).json()
    assert items(folded.json()) == items(known) and folded.json()["read"] == row.nnz


def test_interactions_fold_in_and_similar_items_read_one_film(client, catalogue):
    star_wars = client.get("/v1/items", params={"query": "STAR wars"}).json()["items"]
    assert star_wars[0] == {"item": 50, "title": "Star Wars (1977)",
                            "genres": ["Action", "Adventure", "Romance", "Sci-Fi", "War"]}
    similar = client.get("/v1/items/50/similar", params={"model": "ease", "k": 5}).json()
    # EASE's similar items are the film's row of weights, largest first
    scorer = catalogue.models["ease"].scorer
    weights = scorer.model.weight[scorer.split.item_index(50)].numpy().copy()
    weights[scorer.split.item_index(50)] = -np.inf
    assert items(similar) == scorer.split.item_ids[np.argsort(-weights)[:5]].tolist()
    assert similar["title"] == "Star Wars (1977)"
    popular = client.get("/v1/items", params={"limit": 3}).json()["items"]
    counts = np.diff(scorer.split.train.tocsc().indptr)  # the most rated in training first
    assert [f["item"] for f in popular] == scorer.split.item_ids[
        np.argsort(-counts, kind="stable")[:3]].tolist()
    assert popular[0]["title"] == "Star Wars (1977)"
    liked = client.post("/v1/recommendations", json={"model": "mult-vae", "k": 5,
                                                     "items": [50, 181, 172]}).json()
    assert len(liked["items"]) == 5 and not {50, 181, 172} & set(items(liked))
    # no model named: the first served one
    assert client.get("/v1/users/1/recommendations").json()["model"] == next(
        iter(catalogue.models))


def test_the_page_is_served_whole_without_a_cdn(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "<script>" in page.text and "http://" not in page.text
    assert "https://" not in page.text


BAD = [
    # (method, path, body or query, status, field)
    ("get", "/v1/users/99999/recommendations", {}, 404, "user_id"),
    ("get", "/v1/users/abc/recommendations", {}, 404, "user_id"),
    ("get", "/v1/users/1/recommendations", {"model": "nope"}, 404, "model"),
    ("get", "/v1/users/1/recommendations", {"model": "../../etc/passwd"}, 404, "model"),
    ("get", "/v1/users/1/recommendations", {"k": 0}, 422, "k"),
    ("get", "/v1/users/1/recommendations", {"k": 101}, 422, "k"),
    ("get", "/v1/users/1/recommendations", {"k": "ten"}, 422, "k"),
    ("get", "/v1/items/99999/similar", {"model": "ease"}, 404, "item_id"),
    ("get", "/v1/items/50/similar", {"model": "mf"}, 409, "model"),
    ("get", "/v1/items/50/similar", {"model": "autorec-i"}, 409, "model"),
    ("get", "/v1/items", {"limit": 0}, 422, "limit"),
    ("get", "/v1/users", {"limit": 0}, 422, "limit"),
    ("get", "/v1/items", {"query": ""}, 422, "query"),
    ("post", "/v1/recommendations", {"model": "mf", "items": [50]}, 409, "model"),
    ("post", "/v1/recommendations", {"model": "nope", "items": [50]}, 404, "model"),
    ("post", "/v1/recommendations", {"ratings": []}, 422, "ratings"),
    ("post", "/v1/recommendations", {}, 422, "ratings"),
    ("post", "/v1/recommendations", {"items": [50], "ratings": [{"item": 1, "rating": 3}]},
     422, "ratings"),
    ("post", "/v1/recommendations", {"ratings": [{"item": 50, "rating": 5},
                                                 {"item": 50, "rating": 3}]},
     422, "ratings[1].item"),
    ("post", "/v1/recommendations", {"ratings": [{"item": 50, "rating": 6}]}, 422,
     "ratings[0].rating"),
    ("post", "/v1/recommendations", {"ratings": [{"item": 50, "rating": 0.5}]}, 422,
     "ratings[0].rating"),
    ("post", "/v1/recommendations", {"ratings": [{"item": 50}]}, 422, "ratings[0].rating"),
    ("post", "/v1/recommendations", {"ratings": [{"item": 99999, "rating": 3}]}, 422,
     "ratings[0].item"),
    ("post", "/v1/recommendations", {"items": [50], "exclude": [99999]}, 422, "exclude[0]"),
    ("post", "/v1/recommendations", {"items": [50], "k": 0}, 422, "k"),
    ("post", "/v1/recommendations", {"items": [50], "path": "/etc/passwd"}, 422, "path"),
    ("post", "/v1/recommendations", {"items": [50] * 5001}, 422, "items"),
]


@pytest.mark.parametrize("method, path, payload, status, field", BAD)
def test_bad_requests_get_a_4xx_naming_the_field(method, path, payload, status, field, client):
    kw = {"json": payload} if method == "post" else {"params": payload}
    got = getattr(client, method)(path, **kw)
    assert got.status_code == status, got.text
    problem = got.json()["error"]
    assert problem["status"] == status and problem["field"] == field and problem["message"]


def test_bodies_that_are_not_json_or_too_big_or_not_finite(client):
    post = "/v1/recommendations"
    headers = {"content-type": "application/json"}
    bad = client.post(post, content=b'{"items": [50', headers=headers)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "body"
    nan = client.post(post, content=b'{"ratings": [{"item": 50, "rating": NaN}]}',
                      headers=headers)
    assert nan.status_code == 422
    huge = json.dumps({"items": [50], "pad": " " * 300_000}).encode()
    assert client.post(post, content=huge, headers=headers).status_code == 413

    def chunks():  # no Content-Length: the limit holds for a streamed body too
        for _ in range(40):
            yield b" " * 10_000

    streamed = client.post(post, content=chunks(), headers=headers)
    assert streamed.status_code == 413 and streamed.json()["error"]["field"] == "body"
    small = client.post(post, content=iter([b'{"items": ', b'[50]}']), headers=headers)
    assert small.status_code == 200, small.text
