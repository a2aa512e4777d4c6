"""How big a prompt is (gatewayz/chat/prompt_size.py): the hold's upper bound and the typical
count, by hand-computed examples."""

from __future__ import annotations

from gatewayz.chat import prompt_size

# Messages as JSON with a space after each separator (json.dumps' default), UTF-8 bytes.
HELLO = [{"role": "user", "content": "hello"}]  # {"role": "user", "content": "hello"}: 36 bytes


def test_a_chat_prompt_is_bounded_by_its_bytes_per_message_overhead_and_preamble() -> None:
    size = prompt_size.of_chat({"messages": HELLO})
    assert size.bound == 2 + 36 + 8 + 64  # the list's brackets, the message, overhead, preamble
    assert size.typical == 10 + 8  # 38 bytes at four a token, rounded up, plus the overhead
    assert (size.images, size.prompts) == (0, 1)


def test_non_ascii_text_counts_its_utf8_bytes() -> None:
    # Each of these characters is three bytes: a byte-level tokenizer may make three tokens.
    size = prompt_size.of_chat({"messages": [{"role": "user", "content": "日本語"}]})
    assert size.bound == len('[{"role": "user", "content": "日本語"}]'.encode()) + 8 + 64


def test_tools_and_response_formats_count_too() -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    bare = prompt_size.of_chat({"messages": HELLO})
    with_tools = prompt_size.of_chat({"messages": HELLO, "tools": tools})
    # [[{"type": "function", "function": {"name": "f"}}]]: 51 bytes.
    assert with_tools.bound - bare.bound == 51


def test_images_count_apart_at_the_models_rule_or_the_default_bound() -> None:
    content = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 10_000}},
    ]
    size = prompt_size.of_chat({"messages": [{"role": "user", "content": content}]})
    assert size.images == 2
    text_only = [{"role": "user", "content": [content[0]]}]
    assert size.bound == prompt_size.of_chat({"messages": text_only}).bound
    # GPT-4o mini: 48,169 a high-detail image; unknown models: 50,000.
    assert size.bound_with(48_169) == size.bound + 2 * 48_169
    assert size.bound_with(None) == size.bound + 2 * 50_000
    # Typically an image is counted at most 1,000 tokens (for context room only).
    assert size.typical_with(1_445) == size.typical + 2 * 1_000
    assert size.typical_with(85) == size.typical + 2 * 85


def test_a_legacy_prompt_string() -> None:
    size = prompt_size.of_completion("abcdefgh")
    assert (size.bound, size.typical, size.prompts) == (8 + 64, 2, 1)


def test_token_ids_carry_a_margin() -> None:
    size = prompt_size.of_completion(list(range(800)))
    assert size.bound == 800 + 100 + 64  # one token in eight again, and the preamble
    assert size.typical == 800
    assert size.prompts == 1


def test_a_list_prompt_is_one_generation_per_entry() -> None:
    size = prompt_size.of_completion(["abcd", "abcdefgh", "ab"])
    assert size.prompts == 3
    assert size.bound == (4 + 64) + (8 + 64) + (2 + 64)
    assert size.typical == 1 + 2 + 1
    assert size.longest_typical == 2  # what has to fit the context is one entry
    ids = prompt_size.of_completion([[1, 2, 3], list(range(16))])
    assert ids.prompts == 2
    assert ids.bound == (3 + 0 + 64) + (16 + 2 + 64)


def test_an_empty_prompt_still_counts_its_preamble() -> None:
    assert prompt_size.of_completion("").bound == 64
    assert prompt_size.of_completion([]).bound == 64
