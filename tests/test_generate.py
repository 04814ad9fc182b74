"""The generation engine end to end on the demo models: both passes, checks, output."""

import threading

import numpy as np
import pytest
from PIL import Image

from engine import generate as gen
from engine.catalog import Catalog
from engine.config import load_settings
from engine.errors import Cancelled, InvalidInput
from engine.models import get_pipelines
from tests.lora_helpers import make_lora

BASE = {"poi_name": "Piazza del Duomo", "poi_image": "Fountain view", "action_name": "waving",
        "action_shot_type": "MES", "age": "adult", "gender": "woman",
        "other_details": "a red jacket and jeans", "seed": 7, "steps": 2}


@pytest.fixture
def studio(demo_home):
    settings = load_settings()
    return settings, Catalog.open(settings)


def _outputs(settings):
    return sorted(p.name for p in settings.outputs_dir.glob("*.png"))


def _arr(img):
    return np.asarray(img.convert("RGB")).astype(int)


@pytest.mark.parametrize("shot", ["CLS", "MES", "FUS"])
def test_each_shot_type_paints_only_inside_the_pose_mask(studio, shot):
    settings, cat = studio
    result = gen.generate(dict(BASE, action_shot_type=shot), settings, catalog=cat)
    out = Image.open(result.path)
    poi_rec = cat.get_poi_image(BASE["poi_name"], BASE["poi_image"])
    poi = cat.open_asset(poi_rec.file)
    assert out.size == poi.size == (result.width, result.height)
    scene = gen.prepare_scene(gen.check_request(dict(BASE, action_shot_type=shot), cat), "waving", cat)
    outside = np.asarray(scene.pose_mask) == 0
    diff = np.abs(_arr(out) - _arr(poi)).sum(axis=2)
    assert diff[outside].max() == 0            # the POI photo is kept exactly outside
    assert diff[~outside].mean() > 1           # and something was painted inside
    assert result.face_pass is False and "no LoRA code" in result.face_pass_note
    assert len(result.code) == 8 and result.code.isdigit()


def test_metadata_records_request_prompt_seed_and_models(studio):
    settings, cat = studio
    result = gen.generate(BASE, settings, catalog=cat)
    meta = gen.read_output_meta(result.path)
    assert meta["code"] == result.code and meta["seed"] == 7 and meta["steps"] == 2
    assert meta["request"]["poi_name"] == "Piazza del Duomo"
    assert "wearing a red jacket and jeans" in meta["prompt"] == result.prompt
    assert meta["models"]["inpaint"].startswith("demo/sd-inpaint")
    with Image.open(result.path) as img:
        assert "Seed: 7" in img.text["parameters"]
    assert set(result.timings_s) >= {"check", "pick", "prepare", "models", "body", "save", "total"}


def test_portrait_poi_image_keeps_its_size(studio):
    settings, cat = studio
    result = gen.generate(dict(BASE, poi_image="Portrait view", action_shot_type="FUS"), settings, catalog=cat)
    assert Image.open(result.path).size == (512, 768)


def test_face_pass_with_a_lora_changes_only_the_face(studio, demo_models_root):
    settings, cat = studio
    make_lora(demo_models_root, settings.loras_dir, "12345678", seed=1)
    plain = gen.generate(BASE, settings, catalog=cat)
    with_face = gen.generate(dict(BASE, selected_lora="12345678"), settings, catalog=cat)
    assert with_face.face_pass is True and plain.face_pass is False
    assert "sks person" in with_face.face_prompt
    scene = gen.prepare_scene(gen.check_request(BASE, cat), "waving", cat)
    face = np.asarray(scene.face_mask) > 0
    diff = np.abs(_arr(Image.open(with_face.path)) - _arr(Image.open(plain.path))).sum(axis=2)
    assert diff[~face].max() == 0 and diff[face].mean() > 1
    # the LoRA code is in the private record only: the public PNG must not let a stranger use it
    assert gen.read_record(settings, with_face.code)["models"]["lora"] == "12345678"
    assert "12345678" not in str(Image.open(with_face.path).text)


def test_unknown_lora_code_is_not_an_error(studio):
    settings, cat = studio
    result = gen.generate(dict(BASE, selected_lora="87654321"), settings, catalog=cat)
    assert result.face_pass is False and "no LoRA with code 87654321" in result.face_pass_note


def test_dynamic_selection_picks_the_action_from_words(studio):
    settings, cat = studio
    result = gen.generate(dict(BASE, action_name=None, dynamic_action_selection="true",
                               action_prompt="taking a photo of myself with my phone"), settings, catalog=cat)
    assert result.action_name == "selfie"
    assert result.ranking[0]["action_name"] == "selfie" and len(result.ranking) == len(cat.action_names())


@pytest.mark.parametrize("field,value,accepted", [
    ("poi_name", "Colosseo", "Lungomare"),
    ("poi_image", "Night view", "Fountain view"),
    ("action_name", "dancing", "selfie"),
    ("action_shot_type", "WIDE", "CLS"),
    ("age", "teen", "young, adult, old"),
    ("gender", "robot", "man, woman"),
    ("other_details", "x" * 201, "text up to 200 characters"),
    ("selected_lora", "1234", "8 digits"),
    ("dynamic_action_selection", "perhaps", "true or false"),
    ("seed", -1, "an integer from 0 to 4294967295"),
    ("steps", 0, "an integer from 1 to 150"),
    ("steps", "many", "an integer from 1 to 150"),
    ("guidance", 99, "a number from 0.0 to 30.0"),
    ("colour", "blue", "poi_name"),
])
def test_every_bad_field_names_itself_and_writes_nothing(studio, field, value, accepted):
    settings, cat = studio
    with pytest.raises(InvalidInput) as err:
        gen.generate(dict(BASE, **{field: value}), settings, catalog=cat)
    assert err.value.field == field and accepted in str(err.value)
    assert _outputs(settings) == []


def test_dynamic_selection_needs_a_description(studio):
    settings, cat = studio
    with pytest.raises(InvalidInput) as err:
        gen.generate(dict(BASE, dynamic_action_selection=True, action_prompt="  "), settings, catalog=cat)
    assert err.value.field == "action_prompt"


def test_progress_covers_both_passes_and_cancel_writes_nothing(studio, demo_models_root):
    settings, cat = studio
    make_lora(demo_models_root, settings.loras_dir, "11112222", seed=2)
    seen = []
    result = gen.generate(dict(BASE, selected_lora="11112222", steps=4), settings, catalog=cat,
                          on_progress=seen.append)
    stages = [p.stage for p in seen]
    n_body, n_face = stages.count("body"), stages.count("face")
    assert stages == ["body"] * n_body + ["face"] * n_face and n_body >= 4 and 0 < n_face < n_body
    assert seen[0].stage_steps == n_body and seen[-1].stage_steps == n_face
    assert [p.done for p in seen] == list(range(1, len(seen) + 1))
    assert seen[-1].done == seen[-1].total and result.face_pass
    before = _outputs(settings)
    with pytest.raises(Cancelled):
        gen.generate(dict(BASE, steps=4), settings, catalog=cat,
                     on_progress=lambda p: p.done < 2 and None)
    assert _outputs(settings) == before


def settings_device(settings) -> str:
    from engine.models import pick_device
    return pick_device(settings.device)


def test_two_threads_with_two_loras_match_one_after_the_other(studio, demo_models_root):
    settings, cat = studio
    make_lora(demo_models_root, settings.loras_dir, "10000001", seed=11)
    make_lora(demo_models_root, settings.loras_dir, "10000002", seed=22)
    reqs = [dict(BASE, selected_lora="10000001"), dict(BASE, selected_lora="10000002")]
    sequential = [_arr(Image.open(gen.generate(r, settings, catalog=cat).path)) for r in reqs]
    assert np.abs(sequential[0] - sequential[1]).sum() > 0   # the two faces differ
    results = [None, None]

    def run(i):
        results[i] = gen.generate(reqs[i], settings, catalog=cat)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    # Bit for bit on a CPU; on CUDA, half-precision kernels are not deterministic run to run,
    # so each threaded picture must be far closer to its own sequential twin than the two
    # faces are to each other: a LoRA leaking into the other thread would fail either way.
    apart = np.abs(sequential[0] - sequential[1]).sum()
    for i in range(2):
        drift = np.abs(_arr(Image.open(results[i].path)) - sequential[i]).sum()
        assert drift == 0 if settings_device(settings) == "cpu" else drift < 0.1 * apart


def test_pipelines_share_weights_and_keep_a_bounded_lora_cache(studio, demo_models_root):
    settings, cat = studio
    pipes = get_pipelines(settings)
    assert pipes.face.unet is pipes.body.unet and pipes.face.vae is pipes.body.vae
    assert pipes.face.text_encoder is pipes.body.text_encoder
    assert get_pipelines(settings) is pipes
    pipes.lora_cache_size = 2
    try:
        for i, code in enumerate(["20000001", "20000002", "20000003"]):
            make_lora(demo_models_root, settings.loras_dir, code, seed=30 + i)
            gen.generate(dict(BASE, selected_lora=code), settings, catalog=cat)
        assert list(pipes.loras) == ["20000002", "20000003"]
        adapters = set().union(*pipes.face.get_list_adapters().values())
        assert "lora_20000001" not in adapters and {"lora_20000002", "lora_20000003"} <= adapters
    finally:
        pipes.lora_cache_size = settings.lora_cache_size


def test_memory_savers_are_applied_and_still_generate(demo_home):
    from dataclasses import replace

    from engine.models import load_pipelines
    settings = replace(load_settings(), attention_slicing=True, vae_tiling=True)
    pipes = load_pipelines(settings)
    assert pipes.body.vae.use_tiling
    processors = {type(p).__name__ for p in pipes.body.unet.attn_processors.values()}
    assert processors == {"SlicedAttnProcessor"}
    result = gen.generate(BASE, settings, catalog=Catalog.open(settings), pipelines=pipes)
    assert Image.open(result.path).size == (768, 512)


def test_missing_models_are_a_clear_error(home):
    from engine.errors import ModelError
    from engine.models import load_pipelines
    with pytest.raises(ModelError, match="CARTOLINA_CONTROLNET_MODEL.*python -m engine demo"):
        load_pipelines(load_settings())
