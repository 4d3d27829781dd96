"""Topic routing cannot be made super-linear from the wire.

Issue: a 10,000-word routing key (carried by a CC header: routing keys there have no 255-byte
bound) against ``#.#`` froze the broker for seconds, against ``#.#.#.#.#.a`` for 25 s. The
trie now runs as an automaton (``core/topic.py`` rule 4): the cost is counted in steps, not
timed. The algorithm's own worst cases are in ``tests/property/test_topic_property.py``.
"""

from __future__ import annotations

from minibroker.core.exchanges import TopicExchange
from minibroker.message import Properties
from minibroker.protocols.native import frames as f
from minibroker.server import BrokerServer
from tests.adversarial.canary import Canary
from tests.integration.conftest import RunBroker
from tests.integration.rawclient import RawClient

WORDS = 10_000
PATTERNS = ["#.#", "#.#.#.#.#.a", "*.#.*.#.b"]


def test_a_10000_word_cc_key_against_hash_patterns_costs_steps_linear_in_words(
    run_broker: RunBroker,
) -> None:
    async def scenario(server: BrokerServer) -> None:
        canary = await Canary.start(server.url)
        attacker = await RawClient.connect(server.port)
        await attacker.open_channel()
        await attacker.call(f.ExchangeDeclare(1, "t", "topic", False, False, False, False, {}),
                            f.ExchangeDeclareOk)
        for index, pattern in enumerate(PATTERNS):
            await attacker.declare_queue(f"q{index}")
            await attacker.call(f.QueueBind(1, f"q{index}", "t", pattern, {}), f.QueueBindOk)
        exchange = server.broker.topology.exchanges["t"]
        assert isinstance(exchange, TopicExchange)
        key = ".".join(["x"] * (WORDS - 1) + ["a"])  # matches "#.#" and "#.#.#.#.#.a"
        await attacker.call(f.ConfirmSelect(1), f.ConfirmSelectOk)
        for _ in range(20):
            attacker.send(f.Publish(1, "t", "short", False,
                                    Properties(headers={"CC": [key]}), b"wide"))
        confirmed = 0
        while confirmed < 20:
            confirmed = (await attacker.expect(f.ConfirmAck)).delivery_tag
        # Each live state is one step per word: at most a few per word, never words squared.
        steps = exchange._trie.last_match_steps
        assert WORDS <= steps <= 4 * WORDS, steps
        assert server.broker.queue_statistics("q0").ready == 20
        assert server.broker.queue_statistics("q1").ready == 20
        assert server.broker.queue_statistics("q2").ready == 0
        await canary.rounds_while(3)
        await canary.close()
        attacker.abort()

    run_broker(scenario, timeout=30)
