"""The API over the Celery backend: a real server with `CARTOLINA_BROKER_URL`, Debian's
redis-server and a real `python -m engine worker`, all started here. Redis not answering is a
503 that says so; once it answers, four pictures asked at once wait in order with their places
(no worker is running yet, so nothing depends on timing), then one worker paints them in that
order and each is fetched at its URL."""

from __future__ import annotations

import shutil

import pytest

from test_api import API, REQUEST, Client, ask_four_at_once, assert_painted_in_their_order, assert_problem
from tests.celery_parts import RedisServer, Workers
from tests.homes import fill_demo_home
from tests.server import streamlit_server

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="Debian's redis-server is not installed (bin/setup --dev installs it)")


@pytest.fixture(scope="module")
def site(tmp_path_factory, demo_models_root, demo_catalog_root):
    home = fill_demo_home(tmp_path_factory.mktemp("api-celery"), demo_models_root, demo_catalog_root)
    redis = RedisServer(tmp_path_factory.mktemp("redis"))  # not started yet
    workers = Workers(home, redis.url)
    try:
        env = {"CARTOLINA_BROKER_URL": redis.url, "CARTOLINA_API_RATE_PER_MIN": "100000"}
        with streamlit_server(home, env=env) as base:
            yield base, home, redis, workers
    finally:
        workers.stop_all()
        redis.stop()


@pytest.mark.timeout(400)
def test_redis_away_is_a_503_then_four_pictures_wait_in_order_and_a_worker_paints_them(site):
    base, home, redis, workers = site
    client = Client(base, "127.0.2.2")
    away = client.post(f"{API}/generate", json_body=REQUEST)
    body = assert_problem(away, 503)
    assert "not reachable" in body["detail"] and int(away.headers["retry-after"]) >= 1
    assert client.get(f"{API}/catalog").status == 200  # what needs no Redis still answers

    redis.start()
    waiting = ask_four_at_once(client)  # no worker yet: they all wait
    assert sorted(w["place_in_line"] for w in waiting.values()) == [1, 2, 3, 4]
    workers.start("one")
    done = assert_painted_in_their_order(client, home, waiting)
    picture = client.fetch(next(iter(done.values()))["picture_url"])
    assert picture.status == 200 and picture.type == "image/png"
