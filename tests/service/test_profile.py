"""A new visitor's demographics (`profile`) through the service over real HTTP: the fields it
may give, the models that read them, answers that follow them, and 422s that name the key."""

from __future__ import annotations

import numpy as np
import pytest

from tests.service.conftest import Running, httpx, train


@pytest.fixture(scope="module")
def client(tmp_path_factory, real_data_dir):
    """group-pop and group-bias (read demographics) and EASE (does not), on ml-100k u1."""
    from aebench.bench.runs.runner import SplitCache
    from aebench.bench.service.app import create_app
    from aebench.bench.service.served import load_run

    out = tmp_path_factory.mktemp("profiled") / "run"
    train(out, real_data_dir, "ml-100k", ["group-pop", "group-bias", "ease"])
    with Running(create_app(load_run(out, SplitCache(str(real_data_dir))))) as url:
        with httpx.Client(base_url=url, timeout=60) as c:
            yield c


def test_the_profile_fields_are_the_datasets_user_features(client):
    got = client.get("/v1/profile").json()
    fields = {f["name"]: f for f in got["fields"]}
    assert set(fields) == {"age", "gender", "occupation", "zip"}  # u.user's columns
    assert fields["age"]["kind"] == "numeric" and fields["age"]["values"] is None
    assert fields["gender"]["values"] == ["F", "M"]
    assert "programmer" in fields["occupation"]["values"]
    assert sorted(got["read_by"]) == ["group-bias", "group-pop"]


def test_a_visitor_who_rated_nothing_is_answered_from_their_profile(client):
    """group-pop ranks by the shares of the visitor's groups: a known user of the same
    profile is ranked alike (their own ratings only leave the candidates), and another
    profile is ranked otherwise."""
    known = client.get("/v1/users/1/recommendations",  # u.user line 1: 24|M|technician|85711
                       params={"model": "group-pop", "k": 100}).json()
    same = {"age": 24, "gender": "M", "occupation": "technician", "zip": "8"}
    new = client.post("/v1/recommendations", json={"model": "group-pop", "k": 100,
                                                   "profile": same}).json()
    assert new["profile_read"] is True and new["read"] == 0
    scores = {r["item"]: r["score"] for r in new["items"]}
    common = [r for r in known["items"] if r["item"] in scores]
    assert len(common) > 20  # user 1 rated 272 films: theirs are left out of their list
    for r in common:
        assert r["score"] == pytest.approx(scores[r["item"]], abs=1e-6)
    other = client.post("/v1/recommendations", json={
        "model": "group-pop", "k": 100,
        "profile": {"age": 60, "gender": "F", "occupation": "retired", "zip": "0"}}).json()
    assert [r["item"] for r in other["items"]] != [r["item"] for r in new["items"]]


def test_a_profile_moves_a_rating_model_and_not_one_that_reads_none(client):
    ratings = [{"item": 50, "rating": 5}, {"item": 181, "rating": 4}]

    def ask(model, profile):
        body = {"model": model, "k": 20, "ratings": ratings}
        if profile:
            body["profile"] = profile
        return client.post("/v1/recommendations", json=body).json()

    woman = {"gender": "F", "age": 30, "occupation": "writer", "zip": "9"}
    man = {"gender": "M", "age": 30, "occupation": "engineer", "zip": "1"}
    a, b = ask("group-bias", woman), ask("group-bias", man)
    assert a["profile_read"] and b["profile_read"]
    assert not np.allclose([r["score"] for r in a["items"]], [r["score"] for r in b["items"]])
    plain, told = ask("ease", None), ask("ease", woman)
    assert told["profile_read"] is False and told["items"] == plain["items"]


@pytest.mark.parametrize("profile, field, says", [
    ({"gender": "X"}, "profile.gender", "'X' is not one of F, M"),
    ({"height": 180}, "profile.height", "not a user feature"),
    ({"age": "old"}, "profile.age", "'old' is not a number"),
])
def test_a_bad_profile_is_a_422_naming_the_key(client, profile, field, says):
    got = client.post("/v1/recommendations", json={"model": "group-pop", "profile": profile})
    assert got.status_code == 422, got.text
    problem = got.json()["error"]
    assert problem["field"] == field and says in problem["message"]


def test_the_page_asks_a_visitor_about_themselves(browser, client):
    """A visitor who rates nothing but gives a gender, an age and an occupation gets ten
    films from group-pop and group-bias in a real Chromium."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30)
    browser.get(str(client.base_url).rstrip("/") + "/")
    wait.until(ec.text_to_be_present_in_element((By.ID, "about"), "can answer a new user"))
    assert "read by group-bias, group-pop" in browser.find_element(By.ID, "profile-note").text
    Select(browser.find_element(By.ID, "profile-gender")).select_by_value("F")
    Select(browser.find_element(By.ID, "profile-occupation")).select_by_value("writer")
    browser.find_element(By.ID, "profile-age").send_keys("30")
    Select(browser.find_element(By.ID, "left")).select_by_value("group-pop")
    Select(browser.find_element(By.ID, "right")).select_by_value("group-bias")
    browser.find_element(By.ID, "go").click()
    for side in ("left", "right"):
        wait.until(lambda d, side=side: len(d.find_elements(
            By.CSS_SELECTOR, f"#{side}-list li")) == 10)
    assert browser.find_element(By.ID, "problem").text == ""
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
