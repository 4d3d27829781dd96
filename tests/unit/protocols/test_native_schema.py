"""The native codec's compiled decoders and encoders (``schema.py`` rule 3): compiled on first
use, then called directly by every codec."""

from __future__ import annotations

from minibroker.protocols.native import frames as f
from minibroker.protocols.native.codec import NativeCodec
from minibroker.protocols.native.schema import SCHEMAS, decoders, encoders


def test_first_frame_of_a_type_puts_its_compiled_functions_in_the_shared_tables() -> None:
    client, server = NativeCodec(role="client"), NativeCodec(role="server")
    server.receive_data(client.send_preamble())
    frame = f.QueuePurge(channel=3, queue="jobs")
    for _ in range(2):  # the first through the stand-in, the second through the compiled code
        server.receive_data(client.send(frame))
        assert server.frames() == [frame]
    schema = SCHEMAS[f.QueuePurge.opcode]
    assert decoders(("client", "both"))[f.QueuePurge.opcode] is schema.decode
    assert encoders(("client", "both"))[f.QueuePurge] is schema.encode
    assert "def decode(values)" in schema.source


def test_tables_hold_what_each_side_may_send() -> None:
    assert f.Publish.opcode in decoders(("client", "both"))
    assert f.Deliver.opcode not in decoders(("client", "both"))
    assert f.Deliver in encoders(("server", "both"))
    assert f.Body not in encoders(("server", "both"))  # only the codec makes Body frames
