"""Demo models: the real SD-1.5-inpainting + ControlNet-openpose classes, shrunk to toys.

The studio must run every flow (scene generation, LoRA training, gallery) on a laptop CPU
without downloading gigabytes from a hub, and the tests must exercise the *real* loading
code. So we build folders with exactly the layout `save_pretrained` writes for Stable
Diffusion 1.5 inpainting and a ControlNet, using the same diffusers/transformers classes but
tiny configurations and seeded random weights. `from_pretrained` cannot tell the difference;
the pictures are noise, which is fine for a demo.

Layout (under ``models_dir``)::

    demo/BUILD.json                 marker: recipe version + config hash + file sizes
    demo/sd-inpaint/                StableDiffusionInpaintPipeline.save_pretrained(...)
        model_index.json
        unet/  vae/  text_encoder/  tokenizer/  scheduler/
    demo/controlnet-openpose/       ControlNetModel.save_pretrained(...)
    demo/taesd/                     AutoencoderTiny.save_pretrained(...), for fast mode

Run ``python -m engine.demo.models [MODELS_DIR] [--force]`` to build them by hand.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

from engine.config import DEMO_CONTROLNET, DEMO_INPAINT
from engine.errors import ModelError

# Bump when the build *code* changes in a way the config hash cannot see (e.g. a new
# initialisation rule), so existing demo folders are rebuilt on the next start.
RECIPE_VERSION = 1
TINY_VAE_DIR = "taesd"  # beside sd-inpaint/, where fast mode looks for it (engine.speedups)
SEED = 1234
MARKER_NAME = "BUILD.json"

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
EOW = "</w>"
MAX_TOKENS = 77

# Words that get a single token each. Anything else still encodes (as characters), so the
# token counter and the 77-token truncation behave like the real CLIP tokenizer on the
# prompts the studio actually writes.
WORDS = """
a an the and or of in on at with without to from by for over under near behind front
is are his her their its this that one two three four five some many few very more less
person people man woman men women boy girl child children kid kids baby family couple
friend friends tourist tourists traveler guy lady gentleman teenager student
young adult old elderly middle aged senior teen year years age
face faces head hair eyes eye nose mouth smile smiling laughing happy sad serious
beard moustache glasses sunglasses bald long short curly straight blonde brunette
skin tan pale freckles expression portrait look looking camera viewer
body arm arms hand hands finger fingers leg legs foot feet shoulder shoulders
standing sitting walking running jumping waving pointing holding posing leaning
dancing lying kneeling crouching looking turning raising raised crossed folded
selfie phone smartphone photo picture camera map bag backpack umbrella ice cream
coffee cup glass wine bottle book flowers flower bouquet hat cap scarf
shirt tshirt dress skirt jacket coat sweater hoodie suit tie jeans trousers pants
shorts shoes sneakers boots sandals uniform clothes clothing outfit casual formal
elegant summer winter spring autumn
red orange yellow green blue purple pink brown black white gray grey golden silver
dark light bright colorful colourful pastel
piazza square plaza street road alley city town village old historic ancient
seaside sea beach coast harbor harbour port boat boats ship sand waves water ocean
lake river bridge canal island
monument statue fountain church cathedral tower castle palace temple ruins column
columns arch building buildings house houses wall walls window windows door balcony
roof stairs steps market cafe restaurant shop garden park tree trees
mountain mountains hill hills valley forest field sky clouds cloud sun sunset
sunrise night day evening morning snow rain
italy italian rome venice florence naples milan sicily europe
background foreground scene landscape view panorama
photo photograph photography realistic photorealistic detailed high quality
resolution sharp focus close up shot medium full body wide angle lens portrait
lighting light natural soft hard studio cinematic dramatic shadow shadows
blurry blurred blur deformed distorted ugly bad worst low lowres jpeg artifacts
noise noisy grainy watermark text logo signature cropped extra missing fingers
mutated disfigured duplicate cartoon painting drawing anime illustration render
postcard vintage retro film style beautiful cute nice good best masterpiece
centered center left right top bottom side profile frontal upper lower
""".split()


# -------------------------------------------------------------------------------------------
# Recipe: every number that shapes the weights lives here, so the marker's hash notices
# any change and rebuilds instead of serving stale folders.
# -------------------------------------------------------------------------------------------

TEXT_HIDDEN = 32
BLOCKS = (32, 64)
# Attention sits on the lower-resolution block only: self-attention over 64×64 latents is
# what would make a 512 px picture cost seconds on a 2-core CPU.
DOWN_BLOCKS = ("DownBlock2D", "CrossAttnDownBlock2D")
UP_BLOCKS = ("CrossAttnUpBlock2D", "UpBlock2D")


SIZES = ("demo", "full")
CLIP_VOCAB = 49408  # CLIP ViT-L/14's vocabulary: the full-size text encoder's embedding rows


def _full_size(recipe: dict) -> dict:
    """The published SD-1.5 inpainting, ControlNet-openpose, VAE and CLIP ViT-L/14 shapes
    (parameter counts in ../shared/PACKAGES.md), random weights, saved in half precision:
    every speed and memory figure measured on them is what a visitor pays, not Python overhead
    on a toy. The demo tokenizer stays; the embedding keeps CLIP's 49,408 rows."""
    sd_blocks = [320, 640, 1280, 1280]
    down = ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"]
    return dict(
        recipe,
        text_encoder={"vocab_size": CLIP_VOCAB, "hidden_size": 768, "intermediate_size": 3072,
                      "num_hidden_layers": 12, "num_attention_heads": 12,
                      "max_position_embeddings": MAX_TOKENS, "hidden_act": "quick_gelu",
                      "projection_dim": 768},
        unet={"sample_size": 64, "in_channels": 9, "out_channels": 4, "layers_per_block": 2,
              "block_out_channels": sd_blocks, "down_block_types": down,
              "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
              "cross_attention_dim": 768, "attention_head_dim": 8},
        controlnet={"in_channels": 4, "conditioning_channels": 3, "layers_per_block": 2,
                    "block_out_channels": sd_blocks, "down_block_types": down,
                    "cross_attention_dim": 768, "attention_head_dim": 8,
                    "conditioning_embedding_out_channels": [16, 32, 96, 256]},
        vae={"in_channels": 3, "out_channels": 3, "latent_channels": 4,
             "block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D"] * 4,
             "up_block_types": ["UpDecoderBlock2D"] * 4, "layers_per_block": 2, "sample_size": 512,
             "scaling_factor": 0.18215},
        tiny_vae={},  # AutoencoderTiny's defaults are TAESD's shape (2,445,063 parameters)
        dtype="float16",
    )


def _recipe(vocab_size: int, size: str = "demo") -> dict:
    if size not in SIZES:
        raise ModelError(f"size: {size!r} is not one of {', '.join(SIZES)}")
    return _demo_recipe(vocab_size) if size == "demo" else _full_size(_demo_recipe(vocab_size))


def _demo_recipe(vocab_size: int) -> dict:
    return {
        "seed": SEED,
        "words": sorted(set(WORDS)),
        "text_encoder": {
            "vocab_size": vocab_size,
            "hidden_size": TEXT_HIDDEN,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": MAX_TOKENS,
            "hidden_act": "quick_gelu",
            "projection_dim": TEXT_HIDDEN,
        },
        "unet": {
            "sample_size": 64,
            "in_channels": 9,  # 4 noisy latents + 1 mask + 4 masked-image latents, as SD inpaint
            "out_channels": 4,
            "layers_per_block": 1,
            "block_out_channels": list(BLOCKS),
            "down_block_types": list(DOWN_BLOCKS),
            "up_block_types": list(UP_BLOCKS),
            "cross_attention_dim": TEXT_HIDDEN,
            "attention_head_dim": 4,
            "norm_num_groups": 16,
        },
        "controlnet": {
            "in_channels": 4,
            "conditioning_channels": 3,
            "layers_per_block": 1,
            "block_out_channels": list(BLOCKS),
            "down_block_types": list(DOWN_BLOCKS),
            "cross_attention_dim": TEXT_HIDDEN,
            "attention_head_dim": 4,
            "norm_num_groups": 16,
            # Four entries → three stride-2 convs: a 512 px pose image lands on the 64 px latent.
            "conditioning_embedding_out_channels": [8, 16, 16, 32],
        },
        "vae": {
            "in_channels": 3,
            "out_channels": 3,
            "latent_channels": 4,
            # Four blocks → three downsamples → factor 8, like SD; tiny channels keep the
            # full-resolution convolutions cheap.
            "block_out_channels": [8, 16, 16, 16],
            "down_block_types": ["DownEncoderBlock2D"] * 4,
            "up_block_types": ["UpDecoderBlock2D"] * 4,
            "layers_per_block": 1,
            "norm_num_groups": 8,
            "sample_size": 512,
            "scaling_factor": 0.18215,
        },
        # runwayml/stable-diffusion-inpainting's scheduler, verbatim.
        "scheduler": {
            "beta_start": 0.00085,
            "beta_end": 0.012,
            "beta_schedule": "scaled_linear",
            "num_train_timesteps": 1000,
            "set_alpha_to_one": False,
            "skip_prk_steps": True,
            "steps_offset": 1,
            "clip_sample": False,
            "trained_betas": None,
        },
        # ControlNet's output convs start at zero in diffusers; a small random start makes the
        # control image actually change the demo picture, so pose flows are really exercised.
        "controlnet_zero_conv_std": 0.02,
        # The tiny autoencoder fast mode decodes with (engine.speedups): TAESD's layout, shrunk.
        "tiny_vae": {"encoder_block_out_channels": [8, 8, 8, 8], "decoder_block_out_channels": [8, 8, 8, 8],
                     "num_encoder_blocks": [1, 1, 1, 1], "num_decoder_blocks": [1, 1, 1, 1]},
    }


# -------------------------------------------------------------------------------------------
# Tokenizer
# -------------------------------------------------------------------------------------------

def _bytes_to_unicode() -> dict[int, str]:
    """CLIP/GPT-2's reversible byte → printable character table.

    Copied rather than imported: transformers v5 no longer exposes it from the CLIP module,
    and the vocabulary must use exactly this alphabet to load as a CLIP tokenizer.
    """
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def _word_symbols(word: str, table: dict[int, str]) -> list[str]:
    chars = [table[b] for b in word.encode("utf-8")]
    chars[-1] += EOW
    return chars


def build_vocab_and_merges(words: list[str] | None = None) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A CLIP-format vocabulary in which each listed word is one token.

    Merges are chosen left to right per word, but every merge is also applied to all the
    other words as soon as it is chosen — exactly how BPE replays merges at encode time — so
    a merge picked for one word ("a c" from "across") cannot strand another ("beach"): the
    later merges for "beach" are picked from its segmentation *as the tokenizer will see it*.
    Unknown words fall back to their characters, which are all in the base alphabet.
    """
    vocab, merges = _vocab_and_merges(tuple(WORDS if words is None else words))
    return dict(vocab), list(merges)


@functools.lru_cache(maxsize=4)
def _vocab_and_merges(words: tuple[str, ...]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Cached because the fast "already built" path needs the hash, which needs the size."""
    words = sorted({w.lower() for w in words if w.strip()})
    table = _bytes_to_unicode()
    base = list(table.values())
    vocab: dict[str, int] = {}
    for tok in base + [c + EOW for c in base]:
        vocab[tok] = len(vocab)

    segs = {w: _word_symbols(w, table) for w in words}
    merges: list[tuple[str, str]] = []
    for w in words:  # deterministic: sorted words, each finished before the next
        while len(segs[w]) > 1:
            left, right = segs[w][0], segs[w][1]
            pair = (left, right)
            merges.append(pair)
            joined = left + right
            if joined not in vocab:
                vocab[joined] = len(vocab)
            for other, seg in segs.items():
                if len(seg) > 1 and left in seg:
                    segs[other] = _apply_merge(seg, pair, joined)
    vocab[BOS] = len(vocab)
    vocab[EOS] = len(vocab)
    return vocab, merges


def _apply_merge(seg: list[str], pair: tuple[str, str], joined: str) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(seg):
        if i + 1 < len(seg) and seg[i] == pair[0] and seg[i + 1] == pair[1]:
            out.append(joined)
            i += 2
        else:
            out.append(seg[i])
            i += 1
    return out


def _write_tokenizer_files(folder: Path, vocab: dict[str, int], merges: list[tuple[str, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


# -------------------------------------------------------------------------------------------
# Building
# -------------------------------------------------------------------------------------------

def _config_hash(recipe: dict) -> str:
    blob = json.dumps(recipe, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _build_into(stage: Path, recipe: dict, vocab: dict, merges: list) -> None:
    """Imports live here so `build_demo_models`'s up-to-date check never pays for torch."""
    import torch
    from diffusers import PNDMScheduler, StableDiffusionInpaintPipeline
    from transformers import CLIPTokenizer

    tok_dir = stage / "_tokenizer_src"
    _write_tokenizer_files(tok_dir, vocab, merges)
    # Load through the public path so a file the real loader would reject fails here, not
    # at the first generation.
    tokenizer = CLIPTokenizer.from_pretrained(str(tok_dir), model_max_length=MAX_TOKENS)
    if len(tokenizer) != len(vocab):
        raise ModelError(f"demo tokenizer has {len(tokenizer)} tokens, expected {len(vocab)}")

    # fork_rng: seeding must not reset the caller's global RNG (a trainer in the same process).
    with torch.random.fork_rng(devices=[]):
        text_encoder, unet, vae, controlnet = _seeded_models(recipe, vocab)
        tiny_vae = _seeded_tiny_vae(recipe)

    # from_config (not __init__) keeps `clip_sample: false` in the saved config, so swapping in
    # DDIM via `DDIMScheduler.from_config(...)` does not silently turn sample clipping on.
    scheduler = PNDMScheduler.from_config(recipe["scheduler"])
    pipe = StableDiffusionInpaintPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    if recipe.get("dtype") == "float16":  # the true-size weights, as real checkpoints ship them
        pipe.to(dtype=torch.float16)
        controlnet.to(dtype=torch.float16)
        tiny_vae.to(dtype=torch.float16)

    inpaint_dir = stage / "sd-inpaint"
    pipe.save_pretrained(str(inpaint_dir), safe_serialization=True)
    # transformers v5 writes only tokenizer.json; keep the classic CLIP files beside it too.
    _write_tokenizer_files(inpaint_dir / "tokenizer", vocab, merges)
    controlnet.save_pretrained(str(stage / "controlnet-openpose"), safe_serialization=True)
    tiny_vae.save_pretrained(str(stage / TINY_VAE_DIR), safe_serialization=True)
    shutil.rmtree(tok_dir)


def _seeded_tiny_vae(recipe: dict):
    import torch
    from diffusers import AutoencoderTiny
    torch.manual_seed(recipe["seed"] + 4)
    return AutoencoderTiny(**recipe["tiny_vae"]).eval()


def _seeded_models(recipe: dict, vocab: dict):
    """Seeded per component, so changing one component's recipe leaves the others' weights
    byte-identical and the build order does not matter."""
    import torch
    from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    seed = recipe["seed"]
    torch.manual_seed(seed)
    te_cfg = CLIPTextConfig(**recipe["text_encoder"], bos_token_id=vocab[BOS],
                            eos_token_id=vocab[EOS], pad_token_id=vocab[EOS])
    text_encoder = CLIPTextModel(te_cfg).eval()

    torch.manual_seed(seed + 1)
    unet = UNet2DConditionModel(**recipe["unet"]).eval()

    torch.manual_seed(seed + 2)
    vae = AutoencoderKL(**recipe["vae"]).eval()

    torch.manual_seed(seed + 3)
    controlnet = ControlNetModel(**recipe["controlnet"]).eval()
    std = recipe["controlnet_zero_conv_std"]
    with torch.no_grad():
        for conv in list(controlnet.controlnet_down_blocks) + [controlnet.controlnet_mid_block,
                                                               controlnet.controlnet_cond_embedding.conv_out]:
            conv.weight.normal_(0.0, std)
            conv.bias.zero_()

    return text_encoder, unet, vae, controlnet


def _file_sizes(folder: Path, root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)).replace(os.sep, "/"): p.stat().st_size
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _marker_ok(demo_dir: Path, config_hash: str) -> bool:
    """Cheap completeness check: the marker matches and every listed file has its size."""
    try:
        marker = json.loads((demo_dir / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if marker.get("recipe_version") != RECIPE_VERSION or marker.get("config_hash") != config_hash:
        return False
    files = marker.get("files")
    if not isinstance(files, dict) or not files:
        return False
    for rel, size in files.items():
        try:
            if (demo_dir / rel).stat().st_size != size:
                return False
        except OSError:
            return False
    return True


@contextlib.contextmanager
def _build_lock(demo_dir: Path) -> Iterator[None]:
    """Serialise builders (studio + trainer starting together) without a lock on Windows."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    with open(demo_dir / ".build.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _clear_leftovers(demo_dir: Path) -> None:
    for p in demo_dir.iterdir():
        if p.name.startswith((".stage-", ".trash-")):
            shutil.rmtree(p, ignore_errors=True)


def _write_json_atomic(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def demo_paths(models_dir: Path, size: str = "demo") -> tuple[Path, Path]:
    """models/demo/… for the toys, models/full/… (same names) for the true-size models."""
    models_dir = Path(models_dir)
    inpaint, controlnet = models_dir / DEMO_INPAINT, models_dir / DEMO_CONTROLNET
    if size == "demo":
        return inpaint, controlnet
    return models_dir / size / inpaint.name, models_dir / size / controlnet.name


def demo_models_ready(models_dir: Path, size: str = "demo") -> bool:
    """True when the demo folders are complete and match this code's recipe."""
    vocab, _ = build_vocab_and_merges()
    demo_dir = demo_paths(models_dir, size)[0].parent
    return _marker_ok(demo_dir, _config_hash(_recipe(len(vocab), size)))


def build_demo_models(models_dir: Path, force: bool = False, size: str = "demo") -> dict:
    """Make sure the demo folders exist; rebuild only when missing, stale or forced.

    The marker is removed first and written last, and the folders are built in a staging
    folder then renamed into place, so a build killed at any point leaves no marker and the
    next call starts over instead of loading half-written weights.
    """
    vocab, merges = build_vocab_and_merges()
    recipe = _recipe(len(vocab), size)
    inpaint_dir, controlnet_dir = demo_paths(models_dir, size)
    demo_dir = inpaint_dir.parent
    config_hash = _config_hash(recipe)
    result = {"inpaint": inpaint_dir, "controlnet": controlnet_dir, "built": False}

    if not force and _marker_ok(demo_dir, config_hash):
        return result
    try:
        demo_dir.mkdir(parents=True, exist_ok=True)
        with _build_lock(demo_dir):
            # Another process may have finished the build while we waited for the lock.
            if not force and _marker_ok(demo_dir, config_hash):
                return result
            _clear_leftovers(demo_dir)
            stage = Path(tempfile.mkdtemp(prefix=".stage-", dir=demo_dir))
            try:
                _build_into(stage, recipe, vocab, merges)
                with contextlib.suppress(FileNotFoundError):
                    (demo_dir / MARKER_NAME).unlink()
                tiny_dir = demo_dir / TINY_VAE_DIR
                for name, target in (("sd-inpaint", inpaint_dir), ("controlnet-openpose", controlnet_dir),
                                     (TINY_VAE_DIR, tiny_dir)):
                    if target.exists():
                        trash = Path(tempfile.mkdtemp(prefix=".trash-", dir=demo_dir))
                        os.replace(target, trash / name)
                    os.replace(stage / name, target)
                files = {}
                for target in (inpaint_dir, controlnet_dir, tiny_dir):
                    files.update(_file_sizes(target, demo_dir))
                _write_json_atomic(demo_dir / MARKER_NAME, {
                    "recipe_version": RECIPE_VERSION,
                    "config_hash": config_hash,
                    "seed": recipe["seed"],
                    "vocab_size": len(vocab),
                    "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "files": files,
                })
            finally:
                shutil.rmtree(stage, ignore_errors=True)
                _clear_leftovers(demo_dir)
    except ModelError:
        raise
    except ImportError as exc:
        raise ModelError(f"cannot build demo models: {exc}") from exc
    except Exception as exc:  # any library error is a model problem to the caller
        raise ModelError(f"building demo models in {demo_dir} failed: {type(exc).__name__}: {exc}") from exc
    result["built"] = True
    return result


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    force = "--force" in args
    rest = [a for a in args if a != "--force"]
    if rest:
        models_dir = Path(rest[0])
    else:
        from engine.config import load_settings
        models_dir = load_settings().models_dir
    t0 = time.monotonic()
    out = build_demo_models(models_dir, force=force)
    state = "built" if out["built"] else "already up to date"
    print(f"demo models {state} in {time.monotonic() - t0:.1f}s: {out['inpaint']}, {out['controlnet']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
