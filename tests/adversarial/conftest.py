"""Adversarial tests share the integration fixtures (a real broker on 127.0.0.1:0)."""

from tests.integration.conftest import run_broker

__all__ = ["run_broker"]
