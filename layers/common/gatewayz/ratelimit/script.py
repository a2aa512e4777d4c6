"""The Lua script the Redis and Upstash stores share (DESIGN §3 step 3: one round trip).

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

from gatewayz.ratelimit.base import Store, StoreUnavailable

if TYPE_CHECKING:
    from collections.abc import Sequence

# ARGV[1] picks the operation.
# "hit": KEYS[i] is window i, ARGV[3i-1..3i+1] its limit, period_ms and cost. Counts every
#   window with cost > 0 if each of them has room (count + cost <= limit), else none.
#   Returns {denied, count_1, pttl_1, ..., count_n, pttl_n} (denied: 1-based, 0 = allowed).
#   A counter that exists without an expiry gets one, so no window can live forever.
# "adjust": adds ARGV[2] to KEYS[1] if it exists (INCRBY keeps the expiry), floored at 0.
SOURCE = """
if ARGV[1] == 'adjust' then
  if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
  local value = redis.call('INCRBY', KEYS[1], ARGV[2])
  if value < 0 then value = redis.call('INCRBY', KEYS[1], -value) end
  return value
end
local counts, denied = {}, 0
for i = 1, #KEYS do
  local limit, cost = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i + 1])
  counts[i] = tonumber(redis.call('GET', KEYS[i]) or 0)
  if denied == 0 and cost > 0 and counts[i] + cost > limit then denied = i end
end
local reply = {denied}
for i = 1, #KEYS do
  local period, cost = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  if denied == 0 and cost > 0 then counts[i] = redis.call('INCRBY', KEYS[i], cost) end
  local pttl = redis.call('PTTL', KEYS[i])
  if pttl == -1 then
    redis.call('PEXPIRE', KEYS[i], period)
    pttl = period
  end
  reply[2 * i], reply[2 * i + 1] = counts[i], pttl
end
return reply
"""
SHA = hashlib.sha1(SOURCE.encode(), usedforsecurity=False).hexdigest()


class NoScript(Exception):
    """The server does not have the script cached (NOSCRIPT)."""


class ScriptStore(Store):
    """A store that runs `SOURCE` on a Redis-compatible server; backends only send commands."""

    def _hit(self, keys: list[str], args: list[int]) -> Sequence[int]:
        reply = self._run(keys, ["hit", *args])
        if not isinstance(reply, list) or not all(type(v) is int for v in reply):
            raise StoreUnavailable(f"{self.name}: unexpected script reply {reply!r:.80}")
        return reply

    def _adjust(self, key: str, delta: int) -> None:
        self._run([key], ["adjust", delta])

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
