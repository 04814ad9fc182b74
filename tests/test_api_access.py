"""Who may call the API, and how often, on real servers: a kiosk answers only with its token
(missing, wrong, right), guessing the token is stopped, a client past the rate limit gets 429
with Retry-After, CORS only for the listed origins, and a kiosk without a token serves no API
at all. The loopback-only rule of a studio without a token is checked in-process (a server
here can be reached from loopback only), and so are the settings' own checks."""

from __future__ import annotations

import asyncio
import json

import pytest

from api.access import BAD_TOKEN_BUDGET, Gate, is_loopback
from engine.config import load_settings
from engine.errors import InvalidInput
from test_api import API, Client, assert_problem
from tests.homes import fill_demo_home
from tests.server import streamlit_server

TOKEN = "kiosk-token-0123456789abcdef"
RATE = 40
ORIGIN = "https://museum.example"


@pytest.fixture(scope="module")
def kiosk(tmp_path_factory, demo_models_root, demo_catalog_root):
    home = fill_demo_home(tmp_path_factory.mktemp("api-kiosk"), demo_models_root, demo_catalog_root)
    env = {"CARTOLINA_MODE": "kiosk", "CARTOLINA_API_TOKEN": TOKEN, "CARTOLINA_API_RATE_PER_MIN": str(RATE),
           "CARTOLINA_API_ORIGINS": f"{ORIGIN}, http://localhost:3000"}
    with streamlit_server(home, env=env) as base:
        yield base


def test_a_kiosk_answers_only_with_its_token(kiosk):
    missing = Client(kiosk, "127.0.1.2").get(f"{API}/catalog")
    assert_problem(missing, 401)
    assert missing.headers["www-authenticate"] == 'Bearer realm="cartolina"'
    wrong = Client(kiosk, "127.0.1.2", token="not-the-token-at-all-000").get(f"{API}/catalog")
    assert_problem(wrong, 401)
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert TOKEN not in wrong.body.decode()
    right = Client(kiosk, "127.0.1.2", token=TOKEN)
    assert right.get(f"{API}/catalog").status == 200
    assert right.get(f"{API}/openapi.json").status == 200
    assert_problem(Client(kiosk, "127.0.1.2").get(f"{API}/openapi.json"), 401)
    assert_problem(Client(kiosk, "127.0.1.2").post(f"{API}/generate", json_body={}), 401)


def test_a_client_guessing_the_token_is_stopped_even_when_it_finds_it(kiosk):
    guesser = Client(kiosk, "127.0.1.3")
    answers = [guesser.get(f"{API}/catalog", headers={"Authorization": f"Bearer guess-{i:020d}"}).status
               for i in range(BAD_TOKEN_BUDGET)]
    assert answers == [401] * BAD_TOKEN_BUDGET
    stopped = Client(kiosk, "127.0.1.3", token=TOKEN).get(f"{API}/catalog")
    assert_problem(stopped, 429)
    assert int(stopped.headers["retry-after"]) >= 1
    assert Client(kiosk, "127.0.1.4", token=TOKEN).get(f"{API}/catalog").status == 200


def test_past_the_rate_limit_a_client_gets_429_with_retry_after_and_others_do_not(kiosk):
    client = Client(kiosk, "127.0.1.5", token=TOKEN)
    conn = client.connection()
    try:
        statuses = [client.get(f"{API}/nowhere", conn=conn).status for _ in range(RATE)]
        refused = client.get(f"{API}/nowhere", conn=conn)
    finally:
        conn.close()
    assert statuses == [404] * RATE
    body = assert_problem(refused, 429)
    assert str(RATE) in body["detail"] and 1 <= int(refused.headers["retry-after"]) <= 60
    assert Client(kiosk, "127.0.1.6", token=TOKEN).get(f"{API}/catalog").status == 200


def test_cors_answers_only_the_listed_origins(kiosk):
    client = Client(kiosk, "127.0.1.7")
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"}
    allowed = client.call("OPTIONS", f"{API}/generate", headers=preflight)
    assert allowed.status == 200 and allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    refused = client.call("OPTIONS", f"{API}/generate", headers=dict(preflight, Origin="https://evil.example"))
    assert refused.status == 400 and "access-control-allow-origin" not in refused.headers
    answer = Client(kiosk, "127.0.1.7", token=TOKEN).get(f"{API}/catalog", headers={"Origin": ORIGIN})
    assert answer.status == 200 and answer.headers["access-control-allow-origin"] == ORIGIN
    other = Client(kiosk, "127.0.1.7", token=TOKEN).get(f"{API}/catalog", headers={"Origin": "https://evil.example"})
    assert other.status == 200 and "access-control-allow-origin" not in other.headers


def test_a_kiosk_without_a_token_serves_no_api(tmp_path, demo_models_root, demo_catalog_root):
    (tmp_path / "home").mkdir()
    home = fill_demo_home(tmp_path / "home", demo_models_root, demo_catalog_root)
    with streamlit_server(home, env={"CARTOLINA_MODE": "kiosk"}) as base:
        client = Client(base, "127.0.1.8")
        for method, path in (("GET", "/catalog"), ("GET", "/openapi.json"), ("POST", "/generate"),
                             ("GET", "/jobs/12345678"), ("DELETE", "/visitors/12345678")):
            answer = client.call(method, API + path, headers={"Authorization": "Bearer anything-at-all-000000"})
            body = assert_problem(answer, 404)
            assert body["type"].endswith(":api-off"), body
        assert client.get("/_stcore/health").body == b"ok"  # the kiosk itself is up


# --- in-process: what a real server here cannot show, and the settings ------------------------------

def _call(gate: Gate, client: str, path: str = f"{API}/catalog") -> tuple[int, dict]:
    """One request through the gate, the API behind it answering 200 when it is reached."""
    sent = []

    async def api(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [], "client": (client, 40000), "server": ("127.0.0.1", 8501), "scheme": "http",
             "root_path": "", "http_version": "1.1"}
    gate.app = api
    asyncio.run(gate(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


def test_a_studio_without_a_token_answers_its_own_machine_only():
    studio = Gate(None, load_settings({}))
    assert _call(studio, "127.0.0.1")[0] == 200 and _call(studio, "::1")[0] == 200
    status, body = _call(studio, "192.0.2.7")
    assert status == 403 and body["type"].endswith(":forbidden")
    with_token = Gate(None, load_settings({"CARTOLINA_API_TOKEN": TOKEN}))
    assert _call(with_token, "127.0.0.1")[0] == 401  # a token set is asked of everybody
    assert is_loopback("127.3.4.5") and not is_loopback("10.0.0.1") and not is_loopback("testclient")


def test_api_settings_are_checked_and_the_token_never_shown(tmp_path):
    assert load_settings({}).api_token == "" and load_settings({}).api_origins == ()
    assert load_settings({}).api_rate_per_min == 300
    settings = load_settings({"CARTOLINA_API_TOKEN": TOKEN, "CARTOLINA_API_ORIGINS": "https://a.example/, http://b:8080"})
    assert settings.api_origins == ("https://a.example", "http://b:8080") and TOKEN not in repr(settings)
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    assert load_settings({"CARTOLINA_API_TOKEN_FILE": str(secret)}).api_token == TOKEN
    for env, field in (({"CARTOLINA_API_TOKEN": "short-one"}, "CARTOLINA_API_TOKEN"),
                       ({"CARTOLINA_API_ORIGINS": "*"}, "CARTOLINA_API_ORIGINS"),
                       ({"CARTOLINA_API_ORIGINS": "https://a.example/path"}, "CARTOLINA_API_ORIGINS"),
                       ({"CARTOLINA_API_RATE_PER_MIN": "0"}, "CARTOLINA_API_RATE_PER_MIN")):
        with pytest.raises(InvalidInput) as err:
            load_settings(env)
        assert err.value.field == field and "short-one" not in str(err.value)
