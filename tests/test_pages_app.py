"""The visitor pages without a server or a browser (Streamlit's AppTest): what each path shows,
in English and in Italian. The Italian expected here is written out, not looked up, so a text
that loses its translation fails."""

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from engine.generate import save_output
from tests.server import REPO

TEXTS = {
    "en": {"welcome": "Put yourself in the picture", "demo": "demo models",
           "links": ["1. Give five photos of your face", "2. Make a picture", "3. Find it by its code",
                     "What happens to your photos"],
           "start over": "Start over",
           "gallery": "Gallery", "find": "Find your picture by its 8-digit code",
           "bad code": "A picture code is 8 digits, e.g. 04718263.",
           "unknown": "No picture with code {code}.",
           "none yet": "No pictures yet. Make one on the *Make a picture* page.",
           "picture": "Picture {code}", "code": "Your picture code", "download": "Download",
           "scan": "Scan to get it on your phone",
           "kiosk": "At the kiosk, pictures are found by code only.",
           "privacy": "Your photos and privacy",
           "privacy says": ["**Your photos** are used only", "deleted as soon as that training ends",
                            "**Keep your codes to yourself**"]},
    "it": {"welcome": "Mettiti nella foto", "demo": "modelli dimostrativi",
           "links": ["1. Dacci cinque foto del tuo viso", "2. Crea una foto", "3. Ritrovala con il suo codice",
                     "Che fine fanno le tue foto"],
           "start over": "Ricomincia",
           "gallery": "Galleria", "find": "Ritrova la tua foto con il codice di 8 cifre",
           "bad code": "Il codice di una foto è di 8 cifre, per esempio 04718263.",
           "unknown": "Nessuna foto con il codice {code}.",
           "none yet": "Ancora nessuna foto. Creane una nella pagina *Crea una foto*.",
           "picture": "Foto {code}", "code": "Il codice della tua foto", "download": "Scarica",
           "scan": "Inquadra per averla sul telefono",
           "kiosk": "Al chiosco le foto si ritrovano solo con il codice.",
           "privacy": "Le tue foto e la privacy",
           "privacy says": ["**Le tue foto** servono solo", "Vengono cancellate appena l'addestramento finisce",
                            "**Tieni per te i tuoi codici**"]},
}
LANGS = list(TEXTS)


def _run(script: str, lang: str | None = None) -> AppTest:
    """A page as a visitor opens it, in the studio's default language or from a link with
    `?lang=` (a poster's QR code)."""
    at = AppTest.from_file(str(REPO / script), default_timeout=60)
    if lang:
        at.query_params["lang"] = lang
    return at.run()


def _picture(settings) -> str:
    """A picture in outputs/, saved as the generator saves one."""
    meta = {"prompt": "a woman waving", "negative_prompt": "", "steps": 2, "guidance": 7.5, "seed": 7,
            "models": {"inpaint": "demo/sd-inpaint"}}
    code, _ = save_output(settings, Image.new("RGB", (96, 64), "teal"), meta)
    return code


def _text(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("title", "markdown", "caption", "info", "warning", "error")
                     for e in at.get(kind))


def _captions(at: AppTest) -> list[str]:
    return [c for image in at.get("image") for c in image.captions]


@pytest.mark.parametrize("lang", LANGS)
def test_welcome_page_leads_to_every_visitor_page(home, fresh_ui, lang):
    at = _run("Home.py", lang)
    texts = TEXTS[lang]
    assert not at.exception
    assert at.title[0].value == "Cartolina studio"
    assert texts["welcome"] in _text(at) and texts["demo"] in at.info[0].value
    assert [link.proto.label for link in at.get("page_link")] == texts["links"]
    assert at.get("button_group")[0].value == lang  # the language switch shows the language in use
    assert texts["start over"] not in [b.label for b in at.button]  # studio mode: no kiosk chrome
    assert str(home) not in _text(at) and "Mode:" not in _text(at)  # no server path on a visitor page


def test_welcome_page_switches_language(home, fresh_ui):
    at = _run("Home.py")
    assert TEXTS["en"]["welcome"] in _text(at)
    at.get("button_group")[0].set_value("it").run()
    assert TEXTS["it"]["welcome"] in _text(at) and at.query_params["lang"] == "it"


def test_welcome_page_speaks_the_studio_default_language(home, fresh_ui, monkeypatch):
    monkeypatch.setenv("CARTOLINA_LANGUAGE", "it")
    assert TEXTS["it"]["welcome"] in _text(_run("Home.py"))


@pytest.mark.parametrize("lang", LANGS)
def test_kiosk_welcome_page_has_start_over_and_no_studio_details(home, fresh_ui, monkeypatch, lang):
    monkeypatch.setenv("CARTOLINA_MODE", "kiosk")
    at = _run("Home.py", lang)
    assert TEXTS[lang]["welcome"] in _text(at)
    assert TEXTS[lang]["start over"] in [b.label for b in at.button]
    assert "Mode:" not in _text(at)


@pytest.mark.parametrize("lang", LANGS)
def test_gallery_refuses_a_bad_code_and_says_an_unknown_one_is_unknown(home, fresh_ui, lang):
    texts = TEXTS[lang]
    at = _run("app_pages/gallery.py", lang)
    assert at.title[0].value == texts["gallery"] and at.text_input[0].label == texts["find"]
    assert [i.value for i in at.info] == [texts["none yet"]]
    at.text_input[0].input("4718-263").run()
    assert [e.value for e in at.error] == [texts["bad code"]]
    at.text_input[0].input("04718263").run()
    assert [w.value for w in at.warning] == [texts["unknown"].format(code="04718263")]
    assert not at.error and not at.get("download_button")


@pytest.mark.parametrize("lang", LANGS)
def test_gallery_finds_a_picture_by_its_code_with_a_download_and_a_qr_code(settings, fresh_ui,
                                                                           monkeypatch, lang):
    monkeypatch.setenv("CARTOLINA_PUBLIC_URL", "http://kiosk.local:8501")
    texts = TEXTS[lang]
    code = _picture(settings)
    at = _run("app_pages/gallery.py", lang)
    assert _captions(at) == [code]  # the latest pictures
    at.text_input[0].input(code).run()
    assert not at.error and not at.warning
    assert _captions(at) == [texts["picture"].format(code=code), texts["scan"], code]
    assert (at.metric[0].label, at.metric[0].value) == (texts["code"], code)
    assert [b.proto.label for b in at.get("download_button")] == [texts["download"]]
    assert f"http://kiosk.local:8501/data/outputs/{code}.png" in [c.value for c in at.caption]


@pytest.mark.parametrize("lang", LANGS)
def test_kiosk_gallery_lists_no_pictures_but_finds_one_by_code(settings, fresh_ui, monkeypatch, lang):
    monkeypatch.setenv("CARTOLINA_MODE", "kiosk")
    texts = TEXTS[lang]
    code = _picture(settings)
    at = _run("app_pages/gallery.py", lang)
    assert _captions(at) == [] and texts["kiosk"] in [c.value for c in at.caption]
    at.text_input[0].input(code).run()
    assert _captions(at) == [texts["picture"].format(code=code), texts["scan"]]


@pytest.mark.parametrize("lang", LANGS)
def test_privacy_page_says_what_is_kept_and_for_how_long(home, fresh_ui, lang):
    at = _run("app_pages/privacy.py", lang)
    assert at.title[0].value == TEXTS[lang]["privacy"]
    assert all(said in at.markdown[0].value for said in TEXTS[lang]["privacy says"])


@pytest.mark.parametrize("lang", LANGS)
def test_a_broken_installation_shows_one_plain_sentence_and_no_path(demo_home, fresh_ui, lang, caplog):
    """The catalog file is damaged on disk: the page says so plainly, in the visitor's
    language, with no traceback and no server path (the server's log has the detail)."""
    caplog.set_level("ERROR", logger="cartolina.ui")
    (demo_home / "catalog_db.json").write_text("{ not json")
    at = AppTest.from_file(str(REPO / "Home.py"), default_timeout=60)
    if lang:
        at.query_params["lang"] = lang
    at.run()
    at.switch_page("app_pages/scene.py").run()
    shown = "\n".join(str(e.value) for kind in ("error", "markdown", "caption", "info", "warning")
                      for e in getattr(at, kind))
    expected = {"en": "Something went wrong on our side", "it": "Qualcosa non ha funzionato"}[lang]
    assert expected in shown
    assert not at.exception and str(demo_home) not in shown and "Traceback" not in shown
    # the log keeps what the visitor is spared: the file, what is wrong with it, the traceback
    assert f"catalog file {demo_home / 'catalog_db.json'} is not valid JSON" in caplog.text
    assert "Traceback" in caplog.text and "catalog restore" in caplog.text
