"""Exactly-once bookkeeping for received QoS 2 PUBLISHes (used by the client and the gateway).

Responsible for deciding whether a QoS 2 PUBLISH is new or a duplicate. A message id stays
"seen" while its PUBREL is awaited and for `window_s` seconds after it, because over UDP a
delayed copy of the PUBLISH can arrive after the PUBREL. It must not send anything.

This file runs unchanged on MicroPython.
"""

_AWAITING_PUBREL = -1.0


class Qos2Dedup:
    """Message ids of received QoS 2 PUBLISHes; at most `max_ids` are remembered."""

    __slots__ = ("_ids", "max_ids", "window_s")

    def __init__(self, window_s: float, max_ids: int = 256) -> None:
        self.window_s = window_s
        self.max_ids = max_ids
        self._ids: dict[int, float] = {}

    def is_new(self, msg_id: int, now: float) -> bool:
        """True (and remembered) for a PUBLISH to pass upward; False for a duplicate."""
        released_at = self._ids.get(msg_id)
        if released_at is not None and (
            released_at == _AWAITING_PUBREL or now - released_at < self.window_s
        ):
            return False
        self._ids[msg_id] = _AWAITING_PUBREL
        if len(self._ids) > self.max_ids:
            self._prune(now)
        return True

    def release(self, msg_id: int, now: float) -> bool:
        """PUBREL received: the id stays a duplicate for `window_s` more seconds. True when
        the id was awaiting this PUBREL (False for a repeated or unknown PUBREL)."""
        if self._ids.get(msg_id) == _AWAITING_PUBREL:
            self._ids[msg_id] = now
            return True
        return False

    def forget(self, msg_id: int) -> None:
        """Drop `msg_id` (its PUBLISH was not taken): a retransmission counts as new."""
        self._ids.pop(msg_id, None)

    def clear(self) -> None:
        """Forget everything (a clean session starts)."""
        self._ids = {}

    def _prune(self, now: float) -> None:
        ids = self._ids
        for msg_id in [m for m, t in ids.items() if t != _AWAITING_PUBREL]:
            if now - ids[msg_id] >= self.window_s:
                del ids[msg_id]
        # Still too many (a peer that never sends PUBREL): forget the oldest first.
        while len(ids) > self.max_ids:
            del ids[next(iter(ids))]
