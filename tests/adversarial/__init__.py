"""Adversarial tests: one client attacks from a raw socket while a canary (``canary.py``)
publishes with confirms and consumes; each test asserts the attack is bounded or refused and
that the canary keeps flowing and loses nothing. Waits are bounded by counts, never timed.

- ``test_topic_worst_case``: routing keys of 10,000 words against ``#`` patterns.
- ``test_many_consumers``: 5,000 consumers added to and removed from a busy queue.
- ``test_oversized_input``: frames above ``frame_max``, messages above ``max_message_size``.
- ``test_unread_replies``: pipelined ``basic.get`` + ``basic.recover`` never read.
- ``test_reset_partial_message``: a reset mid-message frees it without the cyclic GC.
- ``test_codec_errors``: hostile values and random bytes are protocol errors, never 541.
- ``test_protocol_errors``: non-UTF-8 routing keys; rate-limited close log lines.
- ``test_partial_messages``: large messages still arriving raise the memory alarm.
- ``test_liveness``: slow frames and hung-up peers, the sweep's two questions.
- ``test_slow_loris``: a frame trickled byte by byte past ``frame_timeout``.
- ``test_consumer_timeout``: a delivery never acknowledged, past ``consumer_timeout``.

Every limit and its answer: ``docs/limits.md``.
"""
