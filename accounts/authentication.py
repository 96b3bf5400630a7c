"""API token authentication with a short per-process memory of valid tokens.

Looking a token up costs a query on every API request; the voting client sends several
requests a second. Valid tokens are remembered for ``TTL_SECONDS``, so a revoked token or a
deactivated user keeps working for at most that long in each server process.
"""

import threading
import time
from collections import OrderedDict

from rest_framework.authentication import TokenAuthentication

TTL_SECONDS = 30
MAX_TOKENS = 10_000


class CachedTokenAuthentication(TokenAuthentication):
    _cache: OrderedDict = OrderedDict()
    _lock = threading.Lock()

    def authenticate_credentials(self, key):
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                return hit[1], hit[2]
        user, token = super().authenticate_credentials(key)
        with self._lock:
            self._cache[key] = (now + TTL_SECONDS, user, token)
            self._cache.move_to_end(key)
            while len(self._cache) > MAX_TOKENS:
                self._cache.popitem(last=False)
        return user, token

    @classmethod
    def forget(cls) -> None:
        with cls._lock:
            cls._cache.clear()
