"""`/data/outputs/` on a real server: pictures by code and nothing else, and a client guessing
codes is stopped while everybody else still gets their picture. Each client is a loopback
address of its own (127.0.0.x), as the server sees phones on a network."""

from __future__ import annotations

import http.client
import secrets

import pytest
from PIL import Image

from tests.server import streamlit_server
from ui.outputs_route import MISS_BUDGET, WINDOW_S, MissLimiter

PICTURE = "04718263"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("outputs-home")
    outputs = home / "outputs"
    outputs.mkdir()
    Image.new("RGB", (32, 24), "teal").save(outputs / f"{PICTURE}.png")
    (outputs / ".codes.lock").write_bytes(b"")
    (outputs / "notes.txt").write_text("not a picture")
    (outputs / f".{PICTURE}.png.x1y2.tmp").write_bytes(b"half a picture")
    (home / "records").mkdir()
    (home / "records" / f"{PICTURE}.json").write_text('{"request": {"selected_lora": "12345678"}}')
    with streamlit_server(home) as base:
        yield base, home


def get(base: str, path: str, client: str) -> tuple[int, dict, bytes]:
    host, port = base.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10, source_address=(client, 0))
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_a_picture_is_served_by_its_code_and_nothing_else_in_the_data_root(server):
    base, home = server
    status, headers, body = get(base, f"/data/outputs/{PICTURE}.png", "127.0.0.2")
    assert status == 200 and headers["content-type"] == "image/png"
    assert body == (home / "outputs" / f"{PICTURE}.png").read_bytes()
    for name in (".codes.lock", "notes.txt", f".{PICTURE}.png.x1y2.tmp", f"{PICTURE}.PNG", f"0{PICTURE}.png",
                 "../records/04718263.json", "..%2Frecords%2F04718263.json", "../catalog_db.json", ""):
        status, _, body = get(base, f"/data/outputs/{name}", "127.0.0.2")
        assert status in (400, 404) and b"12345678" not in body, name  # 400: a path with ".."


def test_a_client_guessing_codes_is_stopped_and_others_still_get_their_pictures(server):
    base, _ = server
    answers = []
    while len(answers) <= MISS_BUDGET:
        answers.append(get(base, f"/data/outputs/{secrets.randbelow(10**8):08d}.png", "127.0.0.3")[0])
        if answers[-1] == 429:
            break
    assert answers == [404] * MISS_BUDGET + [429]
    status, headers, _ = get(base, f"/data/outputs/{PICTURE}.png", "127.0.0.3")
    assert status == 429 and 1 <= int(headers["retry-after"]) <= WINDOW_S  # even a right guess
    assert get(base, f"/data/outputs/{PICTURE}.png", "127.0.0.4")[0] == 200


def test_misses_leave_the_window_as_it_slides():
    limiter = MissLimiter(budget=3, window_s=60)
    for t in (0, 10, 20):
        assert limiter.retry_after("phone", t) is None
        limiter.miss("phone", t)
    assert limiter.retry_after("phone", 30) == 30  # until the miss at 0 is a minute old
    assert limiter.retry_after("another phone", 30) is None
    assert limiter.retry_after("phone", 60) is None  # the miss at 0 has left the window
    small = MissLimiter(budget=1, window_s=60, max_clients=2)
    for client in ("a", "b", "c"):
        small.miss(client, 0)
    assert small.retry_after("a", 1) is None and small.retry_after("c", 1) == 59  # "a" was forgotten
