"""Plausible log-probabilities for the offline model's tokens, in OpenAI's two shapes: chat's
`logprobs.content` entries and legacy completions' parallel lists.

Each token gets a probability between 0.5 and 0.99 from a hash of the token and its
position (so the same answer has the same logprobs); the alternatives, drawn from a small
vocabulary, share the rest, each half as likely as the one before. The chosen token is
thus always the most likely, and the probabilities listed never sum past 1.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

_VOCABULARY = (
    " the", " a", ",", ".", " and", " to", " of", " in", " is", " that", " it", " for",
    "\n", " you", " with", " on", " as", " this", " be", " are", " I",
)  # fmt: skip


def _alternatives(token: str, count: int) -> list[tuple[str, float]]:
    """`token` and up to `count - 1` others, with their log-probabilities, likeliest first."""
    seed = zlib.crc32(token.encode())
    chosen = 0.5 + 0.49 * (seed % 1000) / 1000
    out = [(token, math.log(chosen))]
    others = (t for t in _VOCABULARY if t != token)
    for rank, other in zip(range(1, count), others, strict=False):
        out.append((other, math.log((1 - chosen) / 2**rank)))
    return [(t, round(lp, 6)) for t, lp in out]


def chat_entry(token: str, top: int) -> dict[str, Any]:
    """One token of chat's `logprobs.content`, with `top` entries in `top_logprobs`."""
    ranked = _alternatives(token, max(top, 1))
    return {
        "token": token,
        "logprob": ranked[0][1],
        "bytes": list(token.encode()),
        "top_logprobs": [
            {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in ranked[:top]
        ],
    }


def chat(tokens: list[str], top: int) -> dict[str, Any]:
    """A chat choice's (or chunk's) `logprobs`."""
    return {"content": [chat_entry(t, top) for t in tokens], "refusal": None}


def legacy(tokens: list[str], top: int, offset: int = 0) -> dict[str, Any]:
    """A legacy completion choice's (or chunk's) `logprobs`; `offset`: where in the
    completion's text the first token starts."""
    ranked = [_alternatives(t, max(top, 1)) for t in tokens]
    offsets = []
    for token in tokens:
        offsets.append(offset)
        offset += len(token)
    return {
        "tokens": tokens,
        "token_logprobs": [r[0][1] for r in ranked],
        "top_logprobs": [dict(r[:top]) for r in ranked] if top else None,
        "text_offset": offsets,
    }
