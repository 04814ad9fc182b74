"""The HTTP API (`/api/v1`) on a real server started as the studio serves (`streamlit run
serve.py`), on the demo models and the demo catalog, over real HTTP: a visitor's whole path
(five photos → a LoRA → a picture with their face → fetched at its URL → forgotten), every bad
field refused as problem+json naming it, a bad photo named, upload limits, rate limits, the
catalog in a language, four pictures at once in order, and a property-based run of schemathesis
against the OpenAPI document. One server for the module; each test calls from a loopback
address of its own (127.0.0.x), as the server sees different clients, so rate limits and
guessing counts stay per test."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import pytest
from PIL import Image

from test_training_photos import face_photos, two_faces
from tests.homes import fill_demo_home
from tests.server import streamlit_server

API = "/api/v1"
RATE = 100_000  # requests a minute per client: the limit itself is tested in test_api_access
MAX_UPLOAD_MB = 2
REQUEST = {"poi_name": "Piazza del Duomo", "poi_image": "Fountain view", "action_name": "waving",
           "action_shot_type": "MES", "age": "adult", "gender": "woman", "seed": 3, "steps": 2}
PROBLEM = "application/problem+json"


class Answer:
    def __init__(self, status: int, headers: dict, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    @property
    def type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0]

    def __repr__(self) -> str:
        return f"<{self.status} {self.type} {self.body[:300]!r}>"


def multipart(files: list[tuple[str, str, bytes]], fields: dict | None = None) -> tuple[bytes, str]:
    boundary = secrets.token_hex(12)
    out = io.BytesIO()
    for name, value in (fields or {}).items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, filename, data in files:
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                  f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


class Client:
    """A client at its own loopback address, speaking plain HTTP/1.1 to the server."""

    def __init__(self, base: str, address: str = "127.0.0.1", token: str | None = None):
        parts = urlsplit(base)
        self.host, self.port, self.address, self.token = parts.hostname, parts.port, address, token

    def call(self, method: str, path: str, *, json_body=None, form: dict | None = None,
             files: list | None = None, body: bytes | None = None, headers: dict | None = None,
             chunked: bool = False, conn: http.client.HTTPConnection | None = None) -> Answer:
        sent = dict(headers or {})
        if self.token and "Authorization" not in sent:
            sent["Authorization"] = f"Bearer {self.token}"
        if json_body is not None:
            body, sent["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        elif files is not None:
            body, sent["Content-Type"] = multipart(files, form)
        elif form is not None:
            body, sent["Content-Type"] = urlencode(form).encode(), "application/x-www-form-urlencoded"
        own = conn is None
        conn = conn or self.connection()
        try:
            if chunked:
                conn.request(method, path, body=iter([body[i:i + 8192] for i in range(0, len(body), 8192)]),
                             headers=sent, encode_chunked=True)
            else:
                conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            if own:
                conn.close()

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=60, source_address=(self.address, 0))

    def get(self, path: str, **kw) -> Answer:
        return self.call("GET", path, **kw)

    def post(self, path: str, **kw) -> Answer:
        return self.call("POST", path, **kw)

    def delete(self, path: str, **kw) -> Answer:
        return self.call("DELETE", path, **kw)

    def fetch(self, url: str) -> Answer:
        parts = urlsplit(url)
        return self.get(parts.path + (f"?{parts.query}" if parts.query else ""))


def until(condition, timeout: float = 240.0, every: float = 0.25):
    """Polls a condition (the server moves on its own); returns its first true value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(every)


def finished(client: Client, code: str, timeout: float = 240.0) -> dict:
    def done():
        status = client.get(f"{API}/jobs/{code}")
        assert status.status == 200, status
        answer = status.json()
        return answer if answer["state"] in ("succeeded", "failed", "cancelled", "broken") else None
    return until(done, timeout)


def assert_problem(answer: Answer, status: int, field: str | None = None) -> dict:
    assert answer.status == status and answer.type == PROBLEM, answer
    body = answer.json()
    assert body["status"] == status and body["type"].startswith("urn:cartolina:problem:") and body["title"]
    assert body["detail"] and "Traceback" not in answer.body.decode() and "/tmp/" not in answer.body.decode()
    if field is not None:
        assert body["field"] == field, body
    return body


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_models_root, demo_catalog_root):
    home = fill_demo_home(tmp_path_factory.mktemp("api-home"), demo_models_root, demo_catalog_root)
    env = {"CARTOLINA_STEPS_PER_PHOTO": "1", "CARTOLINA_API_RATE_PER_MIN": str(RATE),
           "CARTOLINA_MAX_UPLOAD_MB": str(MAX_UPLOAD_MB)}
    with streamlit_server(home, env=env) as base:
        yield base, home
    for status in (home / "jobs").glob("*/status.json"):  # a trainer left behind by a failing test
        pid = json.loads(status.read_text()).get("pid")
        if pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def photo_files(photos: list[bytes]) -> list[tuple[str, str, bytes]]:
    return [("photos", f"me-{i}.png", data) for i, data in enumerate(photos)]


# --- a visitor's whole path -----------------------------------------------------------------------

def test_five_photos_make_a_lora_that_paints_the_visitor_then_forget_me_deletes_it_all(server):
    base, home = server
    client = Client(base, "127.0.0.2")
    trained = client.post(f"{API}/train", files=photo_files(face_photos()))
    assert trained.status == 202, trained
    lora = trained.json()["lora_code"]
    assert len(lora) == 8 and lora.isdigit()
    assert trained.headers["location"] == trained.json()["status_url"] == f"{base}{API}/jobs/{lora}"

    done = finished(client, lora)
    assert done["kind"] == "training" and done["state"] == "succeeded", done
    assert done["lora_code"] == lora and done["step"] == done["total_steps"] == 5
    assert (home / "loras" / lora / "pytorch_lora_weights.safetensors").is_file()

    asked = client.post(f"{API}/generate", json_body=dict(REQUEST, selected_lora=lora, face_seed=7))
    assert asked.status == 202, asked
    code = asked.json()["code"]
    assert asked.json()["picture_url"] == f"{base}/data/outputs/{code}.png"
    picture = finished(client, code)
    assert picture["kind"] == "picture" and picture["state"] == "succeeded", picture
    assert picture["face_pass"] is True and picture["action_name"] == "waving"
    assert picture["face_seed"] == 7 and picture["likeness"] is None  # the demo models paint no face to measure
    assert lora not in json.dumps(picture)  # a picture's code never tells the face's code
    fetched = client.fetch(picture["picture_url"])
    assert fetched.status == 200 and fetched.type == "image/png"
    assert Image.open(io.BytesIO(fetched.body)).size[0] > 0

    forgot = client.delete(f"{API}/visitors/{lora}")
    assert forgot.status == 200, forgot
    assert forgot.json() == {"code": lora, "lora": True, "job": True, "pictures": [code]}
    assert client.fetch(picture["picture_url"]).status == 404
    assert_problem(client.get(f"{API}/jobs/{code}"), 404)
    assert_problem(client.get(f"{API}/jobs/{lora}"), 404)
    assert_problem(client.delete(f"{API}/visitors/{lora}"), 404)
    assert not (home / "loras" / lora).exists() and not (home / "jobs" / lora).exists()


def test_a_picture_asked_as_a_form_is_read_as_json_is_and_can_be_cancelled(server):
    base, home = server
    client = Client(base, "127.0.0.3")
    form = {k: str(v) for k, v in dict(REQUEST, steps=150, selected_lora="").items()}
    asked = client.post(f"{API}/generate", form=form)
    assert asked.status == 202, asked
    code = asked.json()["code"]
    cancelled = client.delete(f"{API}/jobs/{code}")
    assert cancelled.status == 200 and cancelled.json()["code"] == code, cancelled
    done = finished(client, code)
    assert done["state"] == "cancelled" and done["error"] == "cancelled" and done["picture_url"] is None
    assert not (home / "outputs" / f"{code}.png").exists()
    again = client.delete(f"{API}/jobs/{code}")  # a finished job stays as it ended
    assert again.status == 200 and again.json()["state"] == "cancelled"


def ask_four_at_once(client: Client) -> dict[str, dict]:
    """Four pictures asked at the same moment; each one's status right after, by code."""
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda i: client.post(f"{API}/generate", json_body=dict(REQUEST, seed=i)),
                                range(4)))
    assert [a.status for a in answers] == [202] * 4, answers
    waiting = {c: client.get(f"{API}/jobs/{c}").json() for c in (a.json()["code"] for a in answers)}
    assert {w["state"] for w in waiting.values()} == {"queued"}
    assert sorted(w["queue_position"] for w in waiting.values()) == [1, 2, 3, 4]
    return waiting


def assert_painted_in_their_order(client: Client, home: Path, waiting: dict[str, dict]) -> dict[str, dict]:
    done = {c: finished(client, c, timeout=300) for c in waiting}
    assert {d["state"] for d in done.values()} == {"succeeded"}, done
    by_place = sorted(waiting, key=lambda c: waiting[c]["place_in_line"])
    by_painting = sorted(waiting, key=lambda c: (home / "outputs" / f"{c}.png").stat().st_mtime_ns)
    assert by_painting == by_place
    return done


def test_four_pictures_asked_at_once_are_served_in_order_with_their_places(server):
    base, home = server
    client = Client(base, "127.0.0.4")
    blocker = client.post(f"{API}/generate", json_body=dict(REQUEST, steps=150)).json()["code"]
    until(lambda: client.get(f"{API}/jobs/{blocker}").json()["state"] == "running")
    waiting = ask_four_at_once(client)
    assert sorted(w["place_in_line"] for w in waiting.values()) == [2, 3, 4, 5]  # one is being painted
    assert client.delete(f"{API}/jobs/{blocker}").status == 200
    assert_painted_in_their_order(client, home, waiting)


# --- refusals -------------------------------------------------------------------------------------

BAD_FIELDS = [
    ("poi_name", {"poi_name": "Atlantis"}),
    ("poi_image", {"poi_image": "Moon view"}),
    ("action_name", {"action_name": "flying"}),
    ("action_shot_type", {"action_shot_type": "XXL"}),
    ("age", {"age": "ancient"}),
    ("gender", {"gender": "robot"}),
    ("other_details", {"other_details": "x" * 500}),
    ("selected_lora", {"selected_lora": "12ab"}),
    ("dynamic_action_selection", {"dynamic_action_selection": "maybe"}),
    ("action_prompt", {"dynamic_action_selection": True, "action_prompt": ""}),
    ("seed", {"seed": -1}),
    ("steps", {"steps": 0}),
    ("guidance", {"guidance": 99}),
    ("colour", {"colour": "red"}),
    ("gender", {"gender": None}),
]


@pytest.mark.parametrize("field,change", BAD_FIELDS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD_FIELDS)])
def test_each_bad_field_is_refused_with_a_problem_naming_it_its_value_and_what_is_accepted(server, field, change):
    base, home = server
    before = set((home / "outputs").iterdir())
    request = {k: v for k, v in dict(REQUEST, **change).items() if v is not None}
    body = assert_problem(Client(base, "127.0.0.5").post(f"{API}/generate", json_body=request), 422, field)
    assert body["reason"] and field in body["detail"]
    if field != "colour":
        assert body["accepted"], body
    if field in ("poi_name", "action_shot_type", "age", "selected_lora"):
        assert body["value"] == change[field]
    if field == "action_shot_type":
        assert body["accepted"] == "CLS, MES, FUS"
    if field == "poi_name":
        assert "Piazza del Duomo" in body["accepted"]
    assert set((home / "outputs").iterdir()) == before


def test_a_body_that_is_not_a_request_is_refused_plainly(server):
    base, _ = server
    client = Client(base, "127.0.0.5")
    assert_problem(client.post(f"{API}/generate", body=b"{not json", headers={"Content-Type": "application/json"}),
                   422, "body")
    assert_problem(client.post(f"{API}/generate", json_body=[1, 2]), 422, "body")
    body = assert_problem(client.post(f"{API}/generate", body=b"hello", headers={"Content-Type": "text/plain"}),
                          415, "Content-Type")
    assert "application/json" in body["accepted"]


def test_a_bad_photo_among_five_is_named_with_its_reason_in_the_visitors_language(server):
    base, home = server
    client = Client(base, "127.0.0.6")
    jobs_before = set((home / "jobs").iterdir())
    photos = face_photos()
    photos[2] = two_faces()
    body = assert_problem(client.post(f"{API}/train?lang=it", files=photo_files(photos)), 422, "photos")
    assert [p["photo"] for p in body["photos"]] == [3]
    assert "visi" in body["photos"][0]["reason"]  # Italian: "2 visi trovati..."
    body = assert_problem(client.post(f"{API}/train", files=photo_files(photos),
                                      headers={"Accept-Language": "en-GB,en;q=0.8"}), 422, "photos")
    assert body["photos"][0]["reason"].startswith("2 faces found")
    body = assert_problem(client.post(f"{API}/train", files=photo_files(face_photos()[:4])), 422, "photos")
    assert body["count_problem"] == "4 photos given; exactly 5 needed" and body["photos"] == []
    assert_problem(client.post(f"{API}/train", form={"photos": "not a file"}), 422)
    assert set((home / "jobs").iterdir()) == jobs_before  # nothing was queued


def test_oversized_uploads_are_refused_with_413(server):
    base, home = server
    client = Client(base, "127.0.0.7")
    jobs_before = set((home / "jobs").iterdir())
    photos = face_photos()
    photos[1] = photos[1] + secrets.token_bytes(MAX_UPLOAD_MB * 1024 * 1024)
    body = assert_problem(client.post(f"{API}/train", files=photo_files(photos)), 413, "photos")
    assert body["value"] == [2] and str(MAX_UPLOAD_MB * 1024 * 1024) in body["accepted"]
    big = dict(REQUEST, other_details="x" * 100_000)
    assert_problem(client.post(f"{API}/generate", json_body=big), 413)
    assert_problem(client.post(f"{API}/generate", body=json.dumps(big).encode(), chunked=True,
                               headers={"Content-Type": "application/json"}), 413)
    assert set((home / "jobs").iterdir()) == jobs_before


def test_unknown_codes_are_404_malformed_ones_422_and_a_client_guessing_codes_is_stopped(server):
    base, _ = server
    client = Client(base, "127.0.0.8")
    assert_problem(client.get(f"{API}/jobs/12345678"), 404)
    body = assert_problem(client.get(f"{API}/jobs/1234"), 422, "code")
    assert body["accepted"] == "8 digits" and body["value"] == "1234"
    assert_problem(client.delete(f"{API}/visitors/98765432"), 404)
    assert_problem(client.get(f"{API}/nowhere"), 404)
    refused = assert_problem(client.call("PUT", f"{API}/catalog"), 405)
    assert refused  # and the Allow header names what is allowed
    assert client.call("PUT", f"{API}/jobs/12345678").headers["allow"] == "DELETE, GET"
    answers = [client.get(f"{API}/jobs/{secrets.randbelow(10**8):08d}").status for _ in range(31)]
    assert answers[:28].count(404) == 28 and answers[-1] == 429
    last = client.get(f"{API}/jobs/12345678")
    assert_problem(last, 429)
    assert int(last.headers["retry-after"]) >= 1
    assert Client(base, "127.0.0.9").get(f"{API}/jobs/12345678").status == 404  # another client is not


# --- the catalog ----------------------------------------------------------------------------------

def test_the_catalog_speaks_the_requested_language_and_its_thumbnails_are_served(server):
    base, _ = server
    client = Client(base, "127.0.0.12")
    english = client.get(f"{API}/catalog").json()
    italian = client.get(f"{API}/catalog?lang=it")
    assert italian.status == 200 and italian.headers["content-language"] == "it"
    italian = italian.json()
    assert english["language"] == "en" and italian["language"] == "it" and italian["languages"] == ["en", "it"]
    assert [p["name"] for p in italian["places"]] == [p["name"] for p in english["places"]]
    assert any(i["description"] != e["description"] for i, e in zip(italian["places"], english["places"]))
    assert client.get(f"{API}/catalog", headers={"Accept-Language": "it-IT,it;q=0.9"}).json() == italian
    assert {p["name"] for p in english["poses"]} >= {"waving"}
    assert [s["value"] for s in english["shot_types"]] == ["CLS", "MES", "FUS"]
    photo = english["places"][0]["photos"][0]
    shown = client.fetch(photo["thumbnail_url"])
    assert shown.status == 200 and shown.type == "image/jpeg" and max(Image.open(io.BytesIO(shown.body)).size) <= 360
    pose = client.fetch(english["poses"][0]["thumbnail_url"])
    assert pose.status == 200 and pose.type == "image/png"
    assert Image.open(io.BytesIO(pose.body)).size == (200, 200)
    far = client.fetch(english["poses"][0]["thumbnail_url"] + "?shot=FUS")
    assert far.status == 200 and far.body != pose.body
    assert_problem(client.get(f"{API}/catalog/poses/{quote('no such pose')}/thumbnail"), 404)
    assert_problem(client.get(f"{API}/catalog?lang=fr"), 422, "lang")
    assert client.post(f"{API}/catalog", json_body={}).status == 405  # read-only


def test_no_cors_unless_origins_are_listed(server):
    base, _ = server
    answer = Client(base, "127.0.0.13").get(f"{API}/catalog", headers={"Origin": "https://museum.example"})
    assert answer.status == 200 and "access-control-allow-origin" not in answer.headers


def test_a_broken_studio_answers_one_plain_sentence_never_a_traceback_or_a_path(server):
    base, home = server
    client = Client(base, "127.0.0.15")
    catalog = home / "catalog_db.json"
    good = catalog.read_bytes()
    catalog.write_text("{ this is not a catalog")
    try:
        for answer in (client.get(f"{API}/catalog"), client.post(f"{API}/generate", json_body=REQUEST)):
            body = assert_problem(answer, 500)
            assert body["type"].endswith(":server-error")
            assert str(home) not in answer.body.decode() and "catalog_db" not in answer.body.decode()
    finally:
        catalog.write_bytes(good)
    assert client.get(f"{API}/catalog").status == 200


# --- the contract ---------------------------------------------------------------------------------

def test_the_document_is_openapi_3_1_made_from_the_models(server):
    base, _ = server
    doc = Client(base, "127.0.0.14").get(f"{API}/openapi.json").json()
    assert doc["openapi"].startswith("3.1") and doc["servers"] == [{"url": API}]
    assert set(doc["paths"]) >= {"/train", "/generate", "/jobs/{code}", "/catalog", "/visitors/{lora_code}"}
    fields = doc["components"]["schemas"]["GenerateRequest"]["properties"]
    assert set(fields) >= {"poi_name", "poi_image", "action_name", "action_shot_type", "age", "gender",
                           "other_details", "selected_lora", "dynamic_action_selection", "action_prompt"}
    assert fields["action_shot_type"]["enum"] == ["CLS", "MES", "FUS"]
    body = doc["paths"]["/generate"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-www-form-urlencoded"} <= set(body)
    assert PROBLEM in doc["paths"]["/generate"]["post"]["responses"]["422"]["content"]


@pytest.mark.timeout(400)
def test_schemathesis_finds_no_5xx_and_every_answer_matches_the_document(server, tmp_path):
    """Property-based: schemathesis generates requests from the document (bounded in examples),
    and checks that nothing answers 5xx and every status, content type, header and body is the
    one documented."""
    base, home = server
    checks = ("not_a_server_error,status_code_conformance,content_type_conformance,"
              "response_headers_conformance,response_schema_conformance,negative_data_rejection,"
              "unsupported_method,allow_header_conformance")
    run = subprocess.run(
        [str(Path(sys.executable).with_name("schemathesis")), "run", f"{base}{API}/openapi.json",
         "--checks", checks, "--max-examples", "8", "--seed", "7", "--workers", "1", "--no-shrink",
         "--phases", "examples,coverage,fuzzing,stateful", "--request-timeout", "60"],
        cwd=tmp_path, capture_output=True, text=True, timeout=380)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "Selected: 8/8" in run.stdout
