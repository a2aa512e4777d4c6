"""Named bodies no schema generator writes, each as raw bytes: lone surrogates, deep
nesting, integers past 64 bits, NaN and Infinity tokens, odd prompts, bodies that are not
objects, duplicate keys, bytes that are not UTF-8.

`expect="400"`: the answer must be exactly a 400 and nothing may reach a provider (the
issue's "all get a 400"). `expect="no-5xx"`: any answer but a 5xx (the common checks of
the test still apply).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from tests.fuzz.bodies import PATHS, base, dumps

Expect = Literal["400", "no-5xx"]
DEEP = 10_000
S = "\ud800"  # a lone high surrogate: json.dumps writes it as the escape \ud800
NAN, INF = float("nan"), float("inf")
_MARK = "__X__"


@dataclass(frozen=True)
class Hostile:
    id: str
    endpoint: str
    raw: bytes
    expect: Expect

    @property
    def path(self) -> str:
        return PATHS[self.endpoint]


def chat(id: str, expect: Expect = "400", **fields: Any) -> Hostile:
    return Hostile(id, "chat", dumps(base("chat", **fields)), expect)


def text(id: str, expect: Expect = "400", **fields: Any) -> Hostile:
    return Hostile(id, "completions", dumps(base("completions", **fields)), expect)


def spliced(id: str, endpoint: str, token: bytes, expect: Expect = "400", **fields: Any) -> Hostile:
    """The body with `fields`, where the JSON string "__X__" becomes the raw `token` (a
    number, a nest) and __X__ inside a longer string becomes the bytes `token`."""
    raw = dumps(base(endpoint, **fields))
    raw = raw.replace(f'"{_MARK}"'.encode(), token).replace(_MARK.encode(), token)
    return Hostile(id, endpoint, raw, expect)


def duplicated(endpoint: str, field: str, first: Any, second: Any) -> bytes:
    """A body where `field` appears twice, `first` then `second`."""
    rest = dumps(base(endpoint, **{field: ...}))
    head = f'{{"{field}": {json.dumps(first)}, "{field}": {json.dumps(second)}, '
    return head.encode() + rest[1:]


def nest(opener: str, closer: str, depth: int = DEEP) -> bytes:
    return (opener * depth + "1" + closer * depth).encode()


def tool(name: str = "lookup", description: str = "Look it up", parameters: Any = None) -> Any:
    schema = parameters if parameters is not None else {"type": "object", "properties": {}}
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": schema},
    }


def user(content: Any, **extra: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": content, **extra}]


SURROGATES = [
    chat("surrogate-content", messages=user(f"a{S}b")),
    chat("low-surrogate-content", messages=user("a\udfffb")),
    chat("reversed-pair-content", messages=user("\udc00\ud800")),
    chat("surrogate-content-stream", messages=user(S), stream=True),
    chat("surrogate-content-part", messages=user([{"type": "text", "text": S}])),
    chat("surrogate-system", messages=[{"role": "system", "content": S}, *user("hi")]),
    chat("surrogate-name", messages=user("hi", name=S)),
    chat("surrogate-tool-name", tools=[tool(name=S)]),
    chat("surrogate-tool-description", tools=[tool(description=S)]),
    chat("surrogate-tool-parameter-key", tools=[tool(parameters={"properties": {S: {}}})]),
    chat("surrogate-model", model=S),
    chat("surrogate-models", models=[S]),
    chat("surrogate-provider-order", provider={"order": [S]}),
    chat("surrogate-user", user=S),
    chat("surrogate-metadata", metadata={"k": S}),
    chat("surrogate-stop", stop=[S]),
    Hostile("surrogate-key", "chat", dumps({**base("chat"), S: 1}), "400"),
    text("surrogate-prompt", prompt=f"a{S}b"),
    text("surrogate-prompt-list", prompt=["ok", S]),
    text("surrogate-prompt-stream", prompt=S, stream=True),
    text("surrogate-suffix", suffix=S),
    # UTF-8 bytes of a surrogate (ED A0 80) are not UTF-8, but json.loads decodes bytes
    # with "surrogatepass".
    spliced("surrogate-utf8-bytes", "chat", b"\xed\xa0\x80", messages=user(f"a{_MARK}")),
    chat("valid-pair-content", "no-5xx", messages=user("\ud83d\ude00")),
]

_OBJECTS = ('{"a":', "}")
NESTING = [
    spliced("deep-content-arrays", "chat", nest("[", "]"), messages=user(_MARK)),
    spliced("deep-content-objects", "chat", nest(*_OBJECTS), messages=user(_MARK)),
    spliced("deep-tool-parameters", "chat", nest(*_OBJECTS), tools=[tool(parameters=_MARK)]),
    spliced("deep-provider", "chat", nest('{"order":', "}"), provider=_MARK),
    spliced("deep-models", "chat", nest("[", "]"), models=_MARK),
    spliced("deep-prompt", "completions", nest("[", "]"), prompt=_MARK),
    Hostile("deep-body", "chat", nest("[", "]"), "400"),
    spliced(
        "nested-900-tool-parameters",
        "chat",
        nest(*_OBJECTS, 900),
        "no-5xx",
        tools=[tool(parameters=_MARK)],
    ),
    spliced("nested-900-content", "chat", nest("[", "]", 900), "no-5xx", messages=user(_MARK)),
    spliced("nested-200-metadata", "chat", nest(*_OBJECTS, 200), "no-5xx", metadata=_MARK),
    spliced("nested-50-provider", "chat", nest('{"order":', "}", 50), provider=_MARK),
    chat("nested-provider-order", provider={"order": [[[["openrouter"]]]]}),
    spliced("nested-50-models", "chat", nest("[", "]", 50), models=_MARK),
    chat("nested-models-objects", models=[{"a": {"b": ["test/echo"]}}]),
]

_HUGE = [("2^62", 2**62), ("2^63", 2**63), ("2^64", 2**64), ("1e30", 10**30)]
BIG_NUMBERS = [
    *(
        Hostile(f"{field}-{name}", endpoint, dumps(base(endpoint, **{field: value})), "400")
        for endpoint, field in [
            ("chat", "max_tokens"),
            ("chat", "max_completion_tokens"),
            ("completions", "max_tokens"),
        ]
        for name, value in [*_HUGE, ("-1", -1), ("0", 0)]
    ),
    chat("max_tokens-2^62-stream", max_tokens=2**62, stream=True),
    spliced("max_tokens-1e400", "chat", b"1e400", max_tokens=_MARK),
    chat("max_tokens-10^9", "no-5xx", max_tokens=10**9),
    chat("n-2^62", n=2**62),
    chat("n-10^6", n=10**6),
    chat("n-0", n=0),
    chat("n--1", n=-1),
    text("n-2^62-completions", n=2**62),
    chat("n-2^62-stream", n=2**62, stream=True),
    chat("seed-2^64", "no-5xx", seed=2**64),
    spliced("temperature-1e400", "chat", b"1e400", "no-5xx", temperature=_MARK),
    chat("logit-bias-2^70", "no-5xx", logit_bias={"50256": 2**70}),
]

NON_FINITE = [
    chat("nan-temperature", temperature=NAN),
    chat("infinity-top_p", top_p=INF),
    chat("-infinity-presence_penalty", presence_penalty=-INF),
    chat("nan-max_tokens", max_tokens=NAN),
    chat("infinity-max_tokens", max_tokens=INF),
    chat("infinity-n", n=INF),
    chat("-infinity-logit_bias", logit_bias={"50256": -INF}),
    chat("nan-tool-parameters", tools=[tool(parameters={"type": "number", "minimum": NAN})]),
    chat("nan-metadata", metadata={"k": NAN}),
    chat("nan-content", messages=user(NAN)),
    chat("nan-temperature-stream", temperature=NAN, stream=True),
    text("nan-temperature-completions", temperature=NAN),
    text("nan-prompt", prompt=[NAN]),
    text("infinity-seed-completions", seed=INF),
]

PROMPTS = [
    *(
        text(f"prompt-{name}", "no-5xx", prompt=prompt)
        for name, prompt in [
            ("token-ids", [1212, 318, 257, 1332, 13]),
            ("token-id-lists", [[1212, 318], [257, 1332, 13]]),
            ("empty-list", []),
            ("list-of-empty-list", [[]]),
            ("empty-string", ""),
            ("list-of-empty-string", [""]),
            ("strings", ["hello there", "general kenobi"]),
            ("mixed-ints-strings", [1, "a"]),
            ("mixed-list-string", [[1], "a"]),
            ("nested-token-lists", [[1, [2]]]),
            ("negative-token", [-1]),
            ("huge-token", [2**62]),
            ("token-2^64", [2**64]),
            ("bools", [True]),
            ("floats", [1.5]),
            ("null", None),
            ("many-token-ids", list(range(5000))),
        ]
    ),
    text("prompt-token-ids-stream", "no-5xx", prompt=[1, 2, 3], stream=True),
    text("prompt-token-lists-stream", "no-5xx", prompt=[[1, 2], [3]], stream=True),
]

NON_OBJECTS = [
    Hostile(f"body-{name}", endpoint, raw, "400")
    for endpoint in PATHS
    for name, raw in [
        ("array", b"[]"),
        ("array-of-object", b'[{"model": "test/echo"}]'),
        ("string", b'"hello"'),
        ("number", b"1"),
        ("null", b"null"),
        ("true", b"true"),
        ("empty", b""),
        ("whitespace", b"  \n"),
        ("truncated", b'{"model": "test/echo", "messages": ['),
        ("two-objects", b"{}{}"),
        ("trailing-garbage", dumps(base(endpoint)) + b" x"),
    ]
]

DUPLICATE_KEYS = [
    Hostile(f"duplicate-{field}", endpoint, duplicated(endpoint, field, a, b), "no-5xx")
    for endpoint, field, a, b in [
        ("chat", "model", "nope/none", "test/echo"),
        ("chat", "max_tokens", 5, 2**62),
        ("chat", "stream", False, True),
        ("chat", "messages", user("hi"), "x"),
        ("chat", "n", 1, 99_999),
        ("completions", "prompt", "hi", [1, 2]),
    ]
]

NON_UTF8 = [
    *(
        spliced(f"bytes-{name}", "chat", raw, messages=user(f"a{_MARK}"))
        for name, raw in [
            ("ff", b"\xff"),
            ("latin-1", "caf\xe9".encode("latin-1")),
            ("overlong-slash", b"\xc0\xaf"),
            ("truncated-sequence", b"\xe2\x82"),
            ("lone-continuation", b"\x80"),
            ("nul", b"\x00"),
        ]
    ),
    spliced("bytes-latin-1-prompt", "completions", b"\xe9", prompt=f"caf{_MARK}"),
    Hostile("bytes-utf8-bom", "chat", b"\xef\xbb\xbf" + dumps(base("chat")), "no-5xx"),
    Hostile("bytes-utf16", "chat", json.dumps(base("chat")).encode("utf-16"), "no-5xx"),
]

HOSTILE: list[Hostile] = [
    *SURROGATES,
    *NESTING,
    *BIG_NUMBERS,
    *NON_FINITE,
    *PROMPTS,
    *NON_OBJECTS,
    *DUPLICATE_KEYS,
    *NON_UTF8,
]
