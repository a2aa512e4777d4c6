"""The Lua script the Redis and Upstash stores share (docs/architecture.md, step 3: one round trip).

`ScriptStore` runs it by digest (EVALSHA) and falls back to sending the source (EVAL)
when the server does not know it yet (NOSCRIPT: a restart, SCRIPT FLUSH, a new
replica); EVAL also caches it, so the next call is an EVALSHA again. The digest is
computed here, exactly as Redis computes it, so no SCRIPT LOAD round trip is needed.

Redis Cluster: a script may only touch keys of one hash slot, so all keys of one call
must share a hash tag (`rl:{acct:123}:rpm`, `rl:{acct:123}:tpm`, ...).
`memory.py` is this script's Python twin; change both together.
"""

from __future__ import annotations

import hashlib
from abc import abstractmethod
from typing import TYPE_CHECKING

from gatewayz.ratelimit.base import Store, StoreUnavailable, on_worker

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

# ARGV[1] picks the operation.
# "hit": ARGV[2] = m, the number of corrections that come first: KEYS[1..m] with deltas
#   ARGV[4..m+3], each added to its counter if it exists (floored at 0, expiry kept).
#   ARGV[3] = v: 1 when the last key is a version key to read, else 0. Then KEYS[m+i] is
#   window i, with its limit, period_ms and cost at ARGV[m+3i+1..m+3i+3]. Counts every
#   window with cost > 0 if each of them has room (count + cost <= limit), else none.
#   Returns {denied, version, count_1, pttl_1, ..., count_n, pttl_n} (denied: 1-based,
#   0 = allowed; version: the version key's value, 0 when absent or not asked). A counter
#   that exists without an expiry gets one, so none lives forever.
# "adjust": adds ARGV[2] to KEYS[1] if it exists (INCRBY keeps the expiry), floored at 0.
# "announce": sets KEYS[1] to ARGV[2], expiring in ARGV[3] ms, unless it holds a greater
#   version already; returns the value it holds afterwards.
SOURCE = """
local function adjust(key, delta)
  if redis.call('EXISTS', key) == 0 then return -1 end
  local value = redis.call('INCRBY', key, delta)
  if value < 0 then value = redis.call('INCRBY', key, -value) end
  return value
end
if ARGV[1] == 'adjust' then return adjust(KEYS[1], ARGV[2]) end
if ARGV[1] == 'announce' then
  local version, current = tonumber(ARGV[2]), tonumber(redis.call('GET', KEYS[1]) or 0)
  if version <= current then return current end
  redis.call('SET', KEYS[1], version, 'PX', ARGV[3])
  return version
end
local m, v = tonumber(ARGV[2]), tonumber(ARGV[3])
for j = 1, m do adjust(KEYS[j], ARGV[3 + j]) end
local n = #KEYS - m - v
local version = 0
if v == 1 then version = tonumber(redis.call('GET', KEYS[#KEYS]) or 0) end
local counts, denied = {}, 0
for i = 1, n do
  local limit, cost = tonumber(ARGV[m + 3 * i + 1]), tonumber(ARGV[m + 3 * i + 3])
  counts[i] = tonumber(redis.call('GET', KEYS[m + i]) or 0)
  if denied == 0 and cost > 0 and counts[i] + cost > limit then denied = i end
end
local reply = {denied, version}
for i = 1, n do
  local key = KEYS[m + i]
  local period, cost = tonumber(ARGV[m + 3 * i + 2]), tonumber(ARGV[m + 3 * i + 3])
  if denied == 0 and cost > 0 then counts[i] = redis.call('INCRBY', key, cost) end
  local pttl = redis.call('PTTL', key)
  if pttl == -1 then
    redis.call('PEXPIRE', key, period)
    pttl = period
  end
  reply[2 * i + 1], reply[2 * i + 2] = counts[i], pttl
end
return reply
"""
SHA = hashlib.sha1(SOURCE.encode(), usedforsecurity=False).hexdigest()


class NoScript(Exception):
    """The server does not have the script cached (NOSCRIPT)."""


class ScriptStore(Store):
    """A store that runs `SOURCE` on a Redis-compatible server; backends only send commands."""

    def _hit(
        self,
        keys: list[str],
        args: list[int],
        corrections: Sequence[tuple[str, int]],
        version_key: str | None,
    ) -> Sequence[int]:
        return self._checked(self._run(*_hit_command(keys, args, corrections, version_key)))

    def _begin_hit(
        self,
        keys: list[str],
        args: list[int],
        corrections: Sequence[tuple[str, int]],
        version_key: str | None,
        on_answer: Callable[[], None] | None = None,
    ) -> Callable[[], Sequence[int]]:
        reply = self._begin_run(*_hit_command(keys, args, corrections, version_key), on_answer)
        return lambda: self._checked(reply())

    def _begin_run(
        self,
        keys: list[str],
        args: list[str | int],
        on_answer: Callable[[], None] | None = None,
    ) -> Callable[[], object]:
        """`_run` started, its reply read by the returned call: here on a worker thread
        (`Store._begin_hit`); a backend that can send now and read later overrides this."""
        return on_worker(self._run, keys, args)

    def _checked(self, reply: object) -> Sequence[int]:
        if not isinstance(reply, list) or not all(type(v) is int for v in reply):
            raise StoreUnavailable(f"{self.name}: unexpected script reply {reply!r:.80}")
        return reply

    def _adjust(self, key: str, delta: int) -> None:
        self._run([key], ["adjust", delta])

    def _announce(self, key: str, version: int, ttl_ms: int) -> int:
        reply = self._run([key], ["announce", version, ttl_ms])
        if type(reply) is not int:
            raise StoreUnavailable(f"{self.name}: unexpected script reply {reply!r:.80}")
        return reply

    def _run(self, keys: list[str], args: list[str | int]) -> object:
        try:
            return self._call("EVALSHA", SHA, keys, args)
        except NoScript:
            return self._call("EVAL", SOURCE, keys, args)

    @abstractmethod
    def _call(self, command: str, script: str, keys: list[str], args: list[str | int]) -> object:
        """Send `command script len(keys) *keys *args` and return the reply.

        Raises:
            NoScript: the server answered NOSCRIPT.
            StoreUnavailable: anything else went wrong.
        """


def _hit_command(
    keys: list[str],
    args: list[int],
    corrections: Sequence[tuple[str, int]],
    version_key: str | None,
) -> tuple[list[str], list[str | int]]:
    """The script's keys and arguments for "hit" (the layout is described above `SOURCE`)."""
    fixed = [key for key, _ in corrections]
    tail = [] if version_key is None else [version_key]
    deltas = [delta for _, delta in corrections]
    return [*fixed, *keys, *tail], ["hit", len(fixed), len(tail), *deltas, *args]
