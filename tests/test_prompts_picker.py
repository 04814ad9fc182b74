"""Prompts stay inside CLIP's window and say what they cut; the picker ranks by meaning."""

import pytest
from transformers import CLIPTokenizer

from engine import picker, poses, prompts
from engine.errors import InvalidInput


@pytest.fixture(scope="module")
def tokenizer(demo_models_root):
    return CLIPTokenizer.from_pretrained(demo_models_root / "demo" / "sd-inpaint" / "tokenizer")


def _build(tokenizer, **kw):
    args = dict(poi_description="a sunny Italian piazza with a fountain",
                action_description="waving a hand", shot_type="MES", age="old", gender="man",
                details="a red jacket", tokenizer=tokenizer)
    args.update(kw)
    return prompts.build_prompts(**args)


def test_prompt_follows_the_seed_structure(tokenizer):
    p = _build(tokenizer)
    assert p.prompt.startswith("a photo of a old man waving a hand")
    assert "wearing a red jacket" in p.prompt and "medium shot" in p.prompt
    assert "in a sunny Italian piazza with a fountain" in p.prompt
    assert p.cut == [] and p.negative_prompt
    assert "sks person" in p.face_prompt and "old man" in p.face_prompt


def test_no_details_means_no_wearing(tokenizer):
    assert "wearing" not in _build(tokenizer, details="").prompt


def test_long_prompts_are_fitted_to_77_tokens_and_report_the_cut(tokenizer):
    details = " ".join(["a long embroidered velvet cloak with golden buttons"] * 8)
    p = _build(tokenizer, details=details)
    ids = tokenizer(p.prompt).input_ids  # with start and end tokens
    assert len(ids) <= 77 and p.tokens <= 75
    parts = {c["part"] for c in p.cut}
    assert "details" in parts or "place" in parts
    assert p.prompt.startswith("a photo of a old man waving a hand")  # who and what survive


def test_details_are_checked():
    with pytest.raises(InvalidInput) as err:
        prompts.check_details("x" * 201)
    assert err.value.field == "other_details"
    with pytest.raises(InvalidInput, match="control characters"):
        prompts.check_details("red\u0000jacket")
    assert prompts.check_details("  wearing   a hat ") == "a hat"


ACTIONS = list(poses.ACTIONS.values())


def test_minilm_ranks_selfie_first_for_a_photo_of_myself():
    assert picker.minilm_path() is not None  # the package ships the model
    ranking = picker.rank_actions("taking a photo of myself", ACTIONS)
    assert ranking["model"] == picker.MINILM
    assert ranking["ranking"][0]["action_name"] == "selfie"
    scores = [r["score"] for r in ranking["ranking"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == len(ACTIONS)


@pytest.mark.parametrize("text,expected", [("sitting down to rest", "sitting"),
                                           ("saying hello to my friends", "waving"),
                                           ("showing the way with my finger", "pointing")])
def test_minilm_understands_paraphrases(text, expected):
    assert picker.pick_action(text, ACTIONS) == expected


def test_lexical_fallback_when_the_model_is_absent(monkeypatch):
    monkeypatch.setattr(picker, "minilm_path", lambda: None)
    monkeypatch.setattr(picker, "_model", None)
    ranking = picker.rank_actions("a selfie with my phone", ACTIONS)
    assert ranking["model"] == picker.LEXICAL and ranking["ranking"][0]["action_name"] == "selfie"


def test_picker_refuses_empty_or_huge_prompts():
    for bad in ("", "   ", None, "x" * 301):
        with pytest.raises(InvalidInput) as err:
            picker.rank_actions(bad, ACTIONS)
        assert err.value.field == "action_prompt"
