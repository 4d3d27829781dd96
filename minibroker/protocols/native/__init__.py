"""The native msgpack protocol. ``frames`` is loaded first: ``streamframes`` declares its frames
on ``frames.Frame``, and ``frames.FRAME_TYPES`` must see them whichever module is imported first.
"""

from minibroker.protocols.native import frames as _frames  # noqa: F401
