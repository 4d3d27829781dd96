"""RabbitMQ's frame-error texts, with the Erlang term printing they are made of.

RabbitMQ builds the text of a frame error in its reader as ``io_lib:format("type ~p, ~s octets
= ~p: ~p", [Type, "all" | "first", Snippet, Error])`` and the text of an undecodable method as
``"cannot decode ~w"`` of the method's argument octets. Clients and users see these texts, so
this module prints the same few Erlang terms the same way.

Rules:

1. The snippet is the whole payload when it has at most 16 octets ("all octets"), else its
   first 16 ("first 16 octets") — RabbitMQ's own cut, which keeps the text short.
2. ``~w`` prints a binary as ``<<1,2,3>>``. ``~p`` prints it as ``<<"text">>`` when every octet
   is printable Latin-1 (32-126, 160-255, or one of ``\\b\\t\\n\\v\\f\\r\\e``, escaped the Erlang
   way), else as integers; a binary of integers that does not fit before column 80 continues
   on the next line, indented two columns past its ``<<`` (OTP's ``io_lib_pretty``).
3. The error term after the snippet is an atom (``unknown_frame``) or a tuple of an atom and
   integers (``{frame_too_large,9000,8184}``). A tuple that does not fit before column 80
   breaks after its tag, the rest indented one column past its ``{`` — as RabbitMQ prints
   ``{invalid_frame_end_marker,`` then the marker on the next line.
4. Columns count from the start of the text RabbitMQ formats, not counting the ``FRAME_ERROR
   - `` prefix added afterwards. Octets outside ASCII are shown as the Latin-1 characters
   RabbitMQ prints; where the payload is valid UTF-8 the text carries those very octets.
"""

from __future__ import annotations

__all__ = ["cannot_decode", "frame_error", "print_binary", "unexpected_frame", "write_binary"]

_LINE = 80  # io_lib's default line length
_ESCAPES = {8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 27: "\\e",
            34: '\\"', 92: "\\\\"}


def write_binary(data: bytes) -> str:
    """Erlang's ``~w`` of a binary: ``<<1,2,3>>`` on one line."""
    return "<<" + ",".join(map(str, data)) + ">>"


def _printable(data: bytes) -> bool:
    return all(32 <= b <= 126 or b >= 160 or b in _ESCAPES for b in data)


def print_binary(data: bytes, column: int) -> str:
    """Erlang's ``~p`` of a binary that starts at 0-based ``column`` (rule 2)."""
    if not data:
        return "<<>>"
    if _printable(data):
        try:
            text = data.decode()  # the very octets RabbitMQ sends (rule 4)
        except UnicodeDecodeError:
            text = data.decode("latin-1")
        return '<<"' + "".join(_ESCAPES.get(ord(c), c) if ord(c) < 128 else c
                               for c in text) + '">>'
    flat = write_binary(data)
    # io_lib_pretty: one line if it fits left of column 80 (its columns count from 1) ...
    if len(flat) < _LINE - (column + 1):
        return flat
    # ... else fill each line with "N," items; the last item also needs room for nothing more.
    room = max(8, min(_LINE - (column + 3), len(flat) - 4))
    indent = "\n" + " " * (column + 2)
    items = [str(b) for b in data]
    out = ["<<"]
    left = room
    for item in items[:-1]:
        width = len(item) + 1
        if left - width < 0:
            out.append(indent)
            left = room
        out.append(item + ",")
        left -= width
    if len(items[-1]) > left:
        out.append(indent)
    out.append(items[-1] + ">>")
    return "".join(out)


def _print_term(term: str | tuple[str | int, ...], column: int) -> str:
    """``~p`` of an atom or of a tuple of an atom and integers (rule 3)."""
    if isinstance(term, str):
        return term
    parts = [str(element) for element in term]
    flat = "{" + ",".join(parts) + "}"
    if len(flat) < _LINE - (column + 1):
        return flat
    indent = "\n" + " " * (column + 1)
    return "{" + parts[0] + "," + ",".join(indent + part for part in parts[1:]) + "}"


def _column_after(text: str) -> int:
    return len(text) - (text.rfind("\n") + 1)


def _snippet_text(frame_type: int, payload: bytes) -> str:
    """``type T, S octets = <<...>>`` (rule 1)."""
    if len(payload) <= 16:
        head = f"type {frame_type}, all octets = "
    else:
        head = f"type {frame_type}, first 16 octets = "
        payload = payload[:16]
    return head + print_binary(payload, len(head))


def frame_error(frame_type: int, payload: bytes, error: str | tuple[str | int, ...]) -> str:
    """The detail of RabbitMQ's ``501 FRAME_ERROR`` for a bad frame: ``type 9, all octets =
    <<1,2>>: unknown_frame``. ``payload`` is what RabbitMQ had read of the frame (nothing for
    an oversized one)."""
    text = _snippet_text(frame_type, payload) + ": "
    return text + _print_term(error, _column_after(text))


def unexpected_frame(frame_type: int, payload: bytes) -> str:
    """The detail of RabbitMQ's ``505 UNEXPECTED_FRAME`` for a frame on the wrong channel (a
    heartbeat off channel 0, content on channel 0): ``type 8, all octets = <<>>``."""
    return _snippet_text(frame_type, payload)


def cannot_decode(arguments: bytes) -> str:
    """The detail of RabbitMQ's ``501 FRAME_ERROR`` for method arguments it cannot decode:
    ``cannot decode <<0,0,6,97>>`` — every argument octet, ``~w`` style (the reply text is then
    cut to a shortstr)."""
    return "cannot decode " + write_binary(arguments)
