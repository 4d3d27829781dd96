"""The web page in a real browser (headless Chromium), served by the real broker.

A person's view: log in, watch a queue appear after a client publishes, publish from the page
and get the message with a client, purge from the page. ``selenium`` is in the test extra and
imported plainly; the test skips, saying why, only without the system's ``chromium`` and
``chromium-driver`` (Debian's packages), which pip cannot install.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pika
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import Select, WebDriverWait

from minibroker.testing import ThreadBroker, broker_in_thread

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
#: The longest the page may take to show what it polls for (it refreshes every 2 s here).
PAGE_TIMEOUT = 20

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="headless Chromium is not installed (Debian: apt-get install chromium "
    "chromium-driver)")


@pytest.fixture
def broker() -> Iterator[ThreadBroker]:
    with broker_in_thread(management=True, heartbeat=0) as running:
        yield running


@pytest.fixture
def driver() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    assert CHROMIUM is not None
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--window-size=1400,1000", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture
def channel(broker: ThreadBroker) -> Iterator[Any]:
    connection = pika.BlockingConnection(pika.URLParameters(
        broker.amqp_url + "?heartbeat=0&connection_attempts=1"))
    try:
        channel = connection.channel()
        channel.confirm_delivery()  # a confirmed publish has been routed by the broker
        yield channel
    finally:
        connection.close()


def log_in(driver: Any, url: str) -> Any:
    wait = WebDriverWait(driver, PAGE_TIMEOUT)
    driver.get(url)
    wait.until(ready.visibility_of_element_located((By.ID, "login")))
    driver.find_element(By.NAME, "user").send_keys("guest")
    driver.find_element(By.NAME, "password").send_keys("guest")
    driver.find_element(By.CSS_SELECTOR, "#login button").click()
    wait.until(ready.text_to_be_present_in_element((By.ID, "who"), "guest"))
    Select(driver.find_element(By.ID, "refresh")).select_by_visible_text("2 s")
    return wait


def test_the_page_follows_the_broker_and_drives_it(
        broker: ThreadBroker, driver: Any, channel: Any) -> None:
    url = broker.management_url
    wait = log_in(driver, url)
    driver.get(f"{url}#/queues")
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#page h1")))
    assert "browser.jobs" not in driver.find_element(By.ID, "page").text

    # A client declares a queue and publishes: the live table shows it.
    channel.queue_declare("browser.jobs")
    channel.basic_publish("", "browser.jobs", b"from a client")
    wait.until(ready.text_to_be_present_in_element((By.ID, "page"), "browser.jobs"))
    method, _, body = channel.basic_get("browser.jobs", auto_ack=True)
    assert body == b"from a client"

    # Publish from the default exchange's page; a client gets the message.
    driver.get(f"{url}#/exchanges/%2F/amq.default")
    form = wait.until(ready.presence_of_element_located((By.ID, "publish-form")))
    form.find_element(By.NAME, "routing_key").send_keys("browser.jobs")
    form.find_element(By.NAME, "payload").send_keys("sent from the page")
    form.find_element(By.CSS_SELECTOR, "button").click()
    wait.until(ready.text_to_be_present_in_element((By.ID, "publish-result"), "published"))
    method, _, body = channel.basic_get("browser.jobs", auto_ack=True)
    assert method is not None and body == b"sent from the page"

    # Purge from the queue's page.
    for number in range(3):
        channel.basic_publish("", "browser.jobs", b"to purge %d" % number)
    assert broker.queue("browser.jobs").ready == 3
    driver.get(f"{url}#/queues/%2F/browser.jobs")
    wait.until(ready.element_to_be_clickable((By.ID, "purge"))).click()
    driver.switch_to.alert.accept()
    wait.until(ready.text_to_be_present_in_element((By.ID, "notice"), "purged"))
    assert broker.queue("browser.jobs").ready == 0

    errors = [entry["message"] for entry in driver.get_log("browser")
              if entry["level"] == "SEVERE"]
    assert errors == []
