"""The full-ranking protocol against a brute-force per-user computation."""

import dataclasses

import numpy as np
import pytest
import torch
from aebench.bench.evaluation import metrics
from aebench.bench.evaluation.evaluate import (
    evaluate_ranking,
    legacy_topk,
    ranking_hits,
    top_k,
    user_scores,
)

from aebench import datasets, models


@pytest.fixture(scope="module")
def setup():
    split = datasets.make_split(datasets.load("synthetic-120x80"), "random-75-25", seed=4)
    torch.manual_seed(0)
    model, cfg = models.create("sae-20-10-20", split.n_users, split.n_items)
    with torch.no_grad():  # spread the scores so the ranking is not near-constant
        model.layers[-1].weight.mul_(50)
    model.eval()
    return split, model, cfg


def row(m, u):
    """Column indices and values of row u of a CSR matrix."""
    return m.indices[m.indptr[u]:m.indptr[u + 1]], m.data[m.indptr[u]:m.indptr[u + 1]]


def dense_scores(model, m):
    """Model outputs for every row of a CSR matrix, through the dense forward pass."""
    with torch.no_grad():
        return model(torch.tensor(m.toarray())).numpy()


def brute_force(model, split, k, relevance):
    return ranked_by(dense_scores(model, split.train), split, k, relevance)


def ranked_by(scores, split, k, relevance):
    """Per user with a relevant test item: (user, hits of the top k among the items the user
    did not rate in training, number relevant), from dense scores[users, items]."""
    rows = []
    for u in range(split.n_users):
        test_items, test_r = row(split.test, u)
        relevant = set(test_items[test_r >= relevance])
        if not relevant:
            continue
        rated = set(row(split.train, u)[0])
        candidates = [i for i in range(split.n_items) if i not in rated]
        # highest score first, ties to the lower item index
        ranked = sorted(candidates, key=lambda i: (-scores[u, i], i))[:k]
        rows.append((u, [i in relevant for i in ranked], len(relevant)))
    return rows


def test_ranking_matches_brute_force(setup):
    split, model, cfg = setup
    users, hits, n_rel = ranking_hits(model, cfg, split.train, split.test, torch.device("cpu"),
                                      10, 4.0, batch_users=17)
    want = brute_force(model, split, 10, 4.0)
    assert list(users) == [u for u, _, _ in want]
    assert hits.tolist() == [h for _, h, _ in want]
    assert list(n_rel) == [n for _, _, n in want]
    assert hits.any()


def test_summary_is_mean_of_per_user_values(setup):
    split, model, cfg = setup
    summary, per_user = evaluate_ranking(model, cfg, split, torch.device("cpu"), ks=(5, 10),
                                         relevance=4.0)
    assert summary["ndcg@10"] == pytest.approx(per_user["ndcg@10"].mean())
    assert len(per_user["user"]) == summary["n_users_ranked"]
    has_test = (np.diff(split.test.indptr) > 0).sum()
    assert summary["n_users_ranked"] + summary["n_users_no_relevant"] == has_test
    want = brute_force(model, split, 10, 4.0)
    hits = np.array([h for _, h, _ in want])
    n = np.array([n for _, _, n in want])
    assert summary["recall@5"] == pytest.approx(metrics.recall_at_k(hits, n, 5).mean())


def test_relevance_threshold_changes_the_relevant_set(setup):
    split, model, cfg = setup
    s4, _ = evaluate_ranking(model, cfg, split, torch.device("cpu"), ks=(5,), relevance=4.0)
    s5, _ = evaluate_ranking(model, cfg, split, torch.device("cpu"), ks=(5,), relevance=5.0)
    assert s5["n_users_ranked"] < s4["n_users_ranked"]


def test_legacy_topk_follows_the_notebook_code(setup):
    """A transcription of the ML-1M notebook's `compute_top_k_accuracy` on dense rows: the
    output for the test row, times the test mask, argsorted over all items."""
    split, model, cfg = setup
    out = legacy_topk(model, cfg, split, torch.device("cpu"), ks=(5, 10))
    scores = dense_scores(model, split.test)
    test = split.test.toarray()
    for k in (5, 10):
        accuracy = 0.0
        for u in range(split.n_users):
            outputs = scores[u] * (test[u] != 0)
            rec_id = np.argsort(-outputs, kind="stable")[:k]
            accuracy += sum(test[u, i] in (4, 5) for i in rec_id) / len(rec_id)
        assert out[f"legacy_topk_acc@{k}"] == pytest.approx(accuracy / split.n_users)


def test_top_k_is_the_head_of_a_stable_descending_sort():
    """By hand: ties go to the lower column, across the cut and inside the top k; a row with
    fewer than k finite scores takes its -inf columns in column order."""
    inf = float("-inf")
    s = torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0],    # three tied at the top, k = 2 cuts them
                      [5.0, 4.0, 4.0, 0.0, 4.0],    # ties below the head, cut at k = 2
                      [inf, 1.0, inf, inf, 2.0],    # two finite scores, k = 3
                      [0.0, 1.0, 2.0, 3.0, 4.0]])   # no ties
    assert top_k(s, 2).tolist() == [[1, 2], [0, 1], [4, 1], [4, 3]]
    assert top_k(s, 3).tolist() == [[1, 2, 4], [0, 1, 2], [4, 1, 0], [4, 3, 2]]
    assert top_k(s, 9).tolist() == torch.sort(s, dim=1, descending=True, stable=True)[1].tolist()
    assert top_k(s, 0).shape == (4, 0)
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        r, c = torch.randint(1, 30, (2,), generator=g).tolist()
        x = torch.randint(0, 4, (r, c), generator=g).float()
        x[torch.rand(r, c, generator=g) < 0.3] = inf
        for k in (1, 3, c):
            want = torch.sort(x, dim=1, descending=True, stable=True).indices[:, :k]
            assert torch.equal(top_k(x, k), want)


def test_a_model_of_tied_scores_ranks_as_brute_force_and_keeps_its_state():
    """Popularity scores every user with one expanded row of few distinct values: most rows
    are tied across the cut, and masking a user's rated items must not write into the row."""
    split = datasets.make_split(datasets.load("synthetic-120x80"), "random-75-25", seed=4)
    model, cfg = models.create("popularity", split.n_users, split.n_items)
    model.fit(split.train)
    with torch.no_grad():
        model.counts.copy_((model.counts / 3).round())  # coarse: ties everywhere
    before = model.counts.clone()
    users, hits, n_rel = ranking_hits(model, cfg, split.train, split.test, torch.device("cpu"),
                                      10, 4.0, batch_users=17)
    assert torch.equal(model.counts, before)
    want = ranked_by(before.expand(split.n_users, -1).numpy(), split, 10, 4.0)
    assert list(users) == [u for u, _, _ in want]
    assert hits.tolist() == [h for _, h, _ in want]
    assert list(n_rel) == [n for _, _, n in want]


def test_item_based_scores_held_a_span_of_users_at_a_time_are_the_same(monkeypatch):
    """An item-row model's items x users scores, held a few users at a time (a memory cap
    far below the matrix), equal the scores held whole."""
    from aebench.bench.evaluation import evaluate

    split = datasets.make_split(datasets.load("synthetic-120x80"), "random-75-25", seed=4)
    torch.manual_seed(0)
    cfg = models.config("autorec-i")
    assert cfg.rows == "item"
    model, cfg = models.create("autorec-i", *cfg.view(split.train).shape)
    whole = torch.cat([s for _, s in user_scores(model, cfg, split.train, torch.device("cpu"),
                                                 batch_users=16)])
    monkeypatch.setattr(evaluate, "ITEM_ROWS_BYTES", 4 * split.n_items * 20)  # 20 users
    spans = list(user_scores(model, cfg, split.train, torch.device("cpu"), batch_users=16))
    assert [a for a, _ in spans] == [0, 16, 20, 36, 40, 56, 60, 76, 80, 96, 100, 116]
    torch.testing.assert_close(torch.cat([s for _, s in spans]), whole, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["cdae", "autorec-i", "glocal-k"])
def test_the_scores_of_some_users_are_those_users_rows_of_every_score(name):
    """`user_scores(users=)`: a user-row model scores those users only, each batch naming
    its users by their index (CDAE reads its per-user vector by it); an item-based model
    and one that reads every row at once (GLocal-K) score all and hand over those rows."""
    split = datasets.make_split(datasets.load("synthetic-120x80"), "random-75-25", seed=4)
    torch.manual_seed(0)
    cfg = models.config(name)
    model, cfg = models.create(name, *cfg.view(split.train).shape)
    users = np.array([3, 4, 17, 40, 41, 42, 99, 119])
    cpu = torch.device("cpu")
    every = torch.cat([s for _, s in user_scores(model, cfg, split.train, cpu, batch_users=16)])
    scored = []
    real = model.score
    model.score = lambda batch: scored.append(batch.rows.tolist()) or real(batch)
    parts = list(user_scores(model, cfg, split.train, cpu, batch_users=3, users=users))
    if cfg.rows == "user" and not model.whole_matrix:
        assert scored == [[3, 4, 17], [40, 41, 42], [99, 119]]
    sizes = [len(s) for _, s in parts]
    assert [a for a, _ in parts] == [sum(sizes[:i]) for i in range(len(parts))]
    # the same rows; a user-row model's batches differ, so the float sums may by an ulp
    torch.testing.assert_close(torch.cat([s for _, s in parts]), every[users])


def test_only_users_with_a_relevant_item_are_scored_where_they_are_few(setup):
    """Where at most half the users have a relevant held-out item (strong generalisation's
    test users), only they are scored; the hits are brute force's."""
    split, model, cfg = setup
    test = split.test.tolil()
    test[split.n_users // 3:] = 0  # two thirds of the users hold out nothing
    split = dataclasses.replace(split, test=test.tocsr())
    n_rel = np.bincount(split.test.nonzero()[0][split.test.data >= 4.0], minlength=split.n_users)
    assert 0 < (n_rel > 0).sum() <= split.n_users // 2
    scored = []
    real = model.score
    model.score = lambda batch: scored.extend(batch.rows.tolist()) or real(batch)
    try:
        users, hits, _ = ranking_hits(model, cfg, split.train, split.test, torch.device("cpu"),
                                   10, 4.0, batch_users=17)
    finally:
        del model.score
    assert scored == users.tolist() == np.flatnonzero(n_rel).tolist()
    want = brute_force(model, split, 10, 4.0)
    assert hits.tolist() == [h for _, h, _ in want]
