"""Direct reply-to: RPC replies that go straight to a consuming channel, without a queue.

RabbitMQ (direct-reply-to docs): "consume from the pseudo-queue amq.rabbitmq.reply-to in
no-ack mode [...] set the reply-to property to amq.rabbitmq.reply-to [...] the server will
rewrite it to amq.rabbitmq.reply-to.<token>. The RPC server publishes the reply to the default
exchange with that routing key."

Rules:

1. Consuming ``amq.rabbitmq.reply-to`` needs ``no_ack`` (else 406 "reply consumer cannot
   acknowledge"); one such consumer per channel. It gets a token (from ``make_name``) that names
   the channel in reply addresses; the token dies with the consumer (cancel, channel close).
2. Publishing with ``reply_to=amq.rabbitmq.reply-to`` needs that consumer on the publishing
   channel (else 406 "fast reply consumer does not exist"); the copy routed carries the
   rewritten address.
3. A publish to the default exchange with routing key ``amq.rabbitmq.reply-to.<token>`` is one
   ``Deliver`` to that consumer (no queue, no ack); an unknown token is unroutable (a mandatory
   publish is returned, as RabbitMQ does).
"""

from __future__ import annotations

from dataclasses import replace

from minibroker.core.channels import BrokerChannel
from minibroker.core.effects import ConsumeOk, Deliver, Effect, Outcome
from minibroker.core.state import BrokerState
from minibroker.errors import NotAllowed, PreconditionFailed
from minibroker.message import Message

__all__ = ["REPLY_PREFIX", "REPLY_QUEUE", "DirectReplyTo"]

REPLY_QUEUE = "amq.rabbitmq.reply-to"
REPLY_PREFIX = REPLY_QUEUE + "."


class DirectReplyTo:
    """The reply consumers of every channel, by token."""

    def __init__(self, state: BrokerState) -> None:
        self.state = state
        #: Token -> the channel whose reply consumer it names.
        self.channels: dict[str, BrokerChannel] = {}

    def consume(self, channel: BrokerChannel, consumer_tag: str, no_ack: bool) -> Outcome:
        """``basic.consume`` on ``amq.rabbitmq.reply-to`` (rule 1)."""
        if consumer_tag in channel.consumers or consumer_tag == channel.reply_consumer:
            raise NotAllowed(f"attempt to reuse consumer tag '{consumer_tag}'")
        if not no_ack:
            raise PreconditionFailed("reply consumer cannot acknowledge")
        if channel.reply_consumer is not None:
            raise PreconditionFailed("reply consumer already set")
        make_name = self.state.make_name
        tag = consumer_tag or make_name("amq.ctag-")
        token = make_name("")
        while token in self.channels:
            token = make_name("")
        channel.reply_consumer, channel.reply_token = tag, token
        self.channels[token] = channel
        return Outcome(ConsumeOk(tag))

    def cancel(self, channel: BrokerChannel) -> None:
        """The channel's reply consumer goes (cancel, channel close): its token dies."""
        if channel.reply_token is not None:
            self.channels.pop(channel.reply_token, None)
        channel.reply_consumer = channel.reply_token = None

    def address(self, channel: BrokerChannel, message: Message) -> Message:
        """Rule 2: the message with its reply-to rewritten to this channel's address."""
        if channel.reply_token is None:
            raise PreconditionFailed("fast reply consumer does not exist")
        return replace(message, properties=replace(
            message.properties, reply_to=REPLY_PREFIX + channel.reply_token
        ))

    def deliver(self, message: Message, effects: list[Effect]) -> bool:
        """Rule 3: deliver a reply; False if the address names no live consumer."""
        channel = self.channels.get(message.routing_key[len(REPLY_PREFIX):])
        if channel is None or channel.reply_consumer is None:
            return False
        tag = channel.take_delivery_tag()
        self.state.delivered += 1
        effects.append(Deliver(
            channel.connection.id, channel.number, channel.reply_consumer, tag, False, message,
        ))
        return True
