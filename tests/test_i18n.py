"""Languages: every text a visitor may read is in each catalog, the catalogs are sound, and the
pages speak the visitor's language, engine errors included."""

import gettext
import re
import subprocess
import sys

import pytest
from babel.messages.pofile import read_po

from engine.config import LOCALES_DIR, available_languages, load_settings
from engine.errors import InvalidInput
from engine.messages import Msg
from tests.server import REPO, browser_page, streamlit_server

CATALOGS = sorted(LOCALES_DIR.glob("*/LC_MESSAGES/messages.po"))
PLACEHOLDER = re.compile(r"{(\w+)(?:[:!][^}]*)?}")


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """The texts in the sources today, extracted as the README says (not the committed .pot)."""
    pot = tmp_path_factory.mktemp("pot") / "messages.pot"
    subprocess.run([str(REPO / ".venv" / "bin" / "pybabel"), "extract", "-F", "babel.cfg", "-k", "Msg",
                    "-k", "N_", "--no-location", "-o", str(pot), "."],
                   cwd=REPO, check=True, capture_output=True)
    with open(pot, "rb") as f:
        return {m.id for m in read_po(f) if m.id}


def test_italian_is_there():
    assert [p.parent.parent.name for p in CATALOGS] == ["it"]
    assert available_languages() == ("en", "it")


@pytest.mark.parametrize("po", CATALOGS, ids=lambda p: p.parent.parent.name)
def test_every_visitor_text_is_translated_with_the_same_placeholders(po, extracted):
    with open(po, "rb") as f:
        catalog = read_po(f)
    translated = {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy}
    assert sorted(extracted - set(translated)) == []  # run the README's "update" step
    for msgid, text in translated.items():
        assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(msgid)), msgid


@pytest.mark.parametrize("po", CATALOGS, ids=lambda p: p.parent.parent.name)
def test_the_compiled_catalog_is_the_current_one(po):
    lang = po.parent.parent.name
    with open(po, "rb") as f:
        catalog = read_po(f)
    compiled = gettext.translation("messages", localedir=LOCALES_DIR, languages=[lang])
    assert all(compiled.gettext(m.id) == m.string for m in catalog if m.id)


def test_an_engine_message_is_english_text_that_keeps_its_template():
    msg = Msg("the face is too small ({side} px; at least {min} px): come closer", side=40, min=80)
    assert msg == "the face is too small (40 px; at least 80 px): come closer"
    assert (msg.template, msg.params) == (
        "the face is too small ({side} px; at least {min} px): come closer", {"side": 40, "min": 80})
    import pickle
    again = pickle.loads(pickle.dumps(msg))
    assert again == msg and again.template == msg.template and again.params == msg.params
    err = InvalidInput("selected_lora", "12ab", Msg("{n} digits", n=8), reason=Msg("not a valid code"))
    assert str(err) == "selected_lora: not a valid code (got '12ab'); accepted: 8 digits"


def test_the_default_language_is_a_setting_with_accepted_values():
    assert load_settings({}).language == "en"
    assert load_settings({"CARTOLINA_LANGUAGE": "it"}).language == "it"
    with pytest.raises(InvalidInput) as err:
        load_settings({"CARTOLINA_LANGUAGE": "fr"})
    assert err.value.field == "CARTOLINA_LANGUAGE" and err.value.accepted == "en, it"


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_models_root, demo_catalog_root):
    from tests.homes import fill_demo_home
    home = fill_demo_home(tmp_path_factory.mktemp("i18n-home"), demo_models_root, demo_catalog_root)
    with streamlit_server(home) as base:
        yield base, home


@pytest.mark.browser
def test_a_poster_link_opens_italian_and_the_switch_goes_back_to_english(server):
    base, _ = server
    with browser_page() as page:
        page.goto(base + "/?lang=it")
        page.get_by_text("Mettiti nella foto").wait_for()
        assert page.get_by_role("link", name="Il tuo viso").count() >= 1
        page.get_by_role("link", name="Crea una foto").first.click()  # the language stays
        page.get_by_role("button", name="Crea la mia foto").wait_for()
        page.get_by_role("radio", name="English").click()
        page.get_by_role("button", name="Make my picture").wait_for()
        page.wait_for_url("**/scene?lang=en")  # a reload keeps English


@pytest.mark.browser
def test_engine_errors_reach_the_visitor_in_italian(server, tmp_path):
    base, home = server
    before = set((home / "outputs").glob("*.png"))
    text = tmp_path / "note.png"
    text.write_text("not a photo")
    with browser_page() as page:
        page.goto(base + "/scene?lang=it")
        page.get_by_role("textbox", name="Il tuo codice di 8 cifre (facoltativo)").fill("12ab")
        page.get_by_role("button", name="Crea la mia foto").click()
        page.get_by_text("Controlla il tuo codice di 8 cifre: non è un codice valido.").wait_for()
        page.get_by_text("Valori accettati: 8 cifre.").wait_for()
        page.goto(base + "/train?lang=it")
        page.locator("input[type=file]").set_input_files([str(text)])  # checked as it is added
        page.get_by_text("Non è un file immagine (accettati: JPEG, PNG, WebP o BMP). "
                         "Toglila e aggiungine un'altra.").wait_for()
        page.get_by_text("0 foto su 5 vanno bene").wait_for()
        assert str(home) not in page.inner_text("body")
    assert set((home / "outputs").glob("*.png")) == before


def test_cli_messages_stay_english(tmp_path):
    out = subprocess.run([sys.executable, "-m", "engine", "generate", "--poi", "x", "--poi-image", "y",
                          "--action", "z", "--shot", "MES", "--age", "adult", "--gender", "woman",
                          "--lora", "12ab"], cwd=REPO, capture_output=True, text=True,
                         env={"CARTOLINA_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 2
    assert "poi_name" in out.stderr and "Controlla" not in out.stderr
