"""Look at the web page in headless Chromium: log in, visit every page, save screenshots.

Not a test (``test_browser.py`` is): a tool to see the page work against the real broker with
real AMQP clients sending steady traffic. Needs ``selenium`` and Debian's ``chromium`` and
``chromium-driver``::

    python -m tests.management.screenshot docs/management-overview.png [--pages]

(``--pages`` also saves a picture of every page beside the first.)

It fails on any error the page logs to the browser console.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pika
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

from minibroker.testing import ThreadBroker, broker_in_thread

PAGES = ("queues", "exchanges", "bindings", "connections", "channels", "consumers",
         "definitions", "queues/%2F/orders.eu", "exchanges/%2F/orders")


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--window-size=1400,1000", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def console_errors(driver: webdriver.Chrome) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE"]


def exercise(driver: webdriver.Chrome, wait: WebDriverWait[webdriver.Chrome], url: str) -> None:
    """Publish from the exchange page, get the message on the queue page, then purge."""
    driver.get(f"{url}/#/exchanges/%2F/orders")
    form = wait.until(ready.presence_of_element_located((By.ID, "publish-form")))
    form.find_element(By.NAME, "routing_key").send_keys("page.check")
    form.find_element(By.NAME, "payload").send_keys("sent from the page")
    form.find_element(By.CSS_SELECTOR, "button").click()
    wait.until(ready.text_to_be_present_in_element((By.ID, "publish-result"), "published"))
    driver.get(f"{url}/#/queues/%2F/inbox")
    form = wait.until(ready.presence_of_element_located((By.ID, "get-form")))
    count = form.find_element(By.NAME, "count")
    count.clear()
    count.send_keys("1000")
    form.find_element(By.CSS_SELECTOR, "button").click()
    wait.until(ready.text_to_be_present_in_element((By.ID, "get-results"),
                                                   "sent from the page"))
    driver.find_element(By.ID, "purge").click()
    driver.switch_to.alert.accept()
    wait.until(ready.text_to_be_present_in_element((By.ID, "notice"), "purged"))


def demo_traffic(broker: ThreadBroker, stop: threading.Event,
                 period: float = 0.25) -> list[threading.Thread]:
    """Two AMQP clients (pika), a topic exchange, three queues and a steady trickle of messages,
    so the page has something to show; rates are sampled every second instead of five."""
    broker._call(lambda: setattr(broker.server.management.sampler,  # type: ignore[union-attr]
                                 "interval", 1.0))

    def connect(name: str) -> pika.BlockingConnection:
        params = pika.URLParameters(broker.amqp_url + "?heartbeat=0")
        params.client_properties = {"connection_name": name}
        return pika.BlockingConnection(params)

    setup = connect("orders-service")
    channel = setup.channel()
    channel.exchange_declare("orders", "topic", durable=True)
    for queue, key in (("orders.eu", "eu.#"), ("orders.us", "us.#"), ("audit", "#"),
                       ("inbox", "page.#")):
        channel.queue_declare(queue, durable=True)
        channel.queue_bind(queue, "orders", key)

    def publish() -> None:
        step = 0
        while not stop.is_set():
            step += 1
            for i in range(3 + step % 7):
                region = "eu" if i % 3 else "us"
                channel.basic_publish("orders", f"{region}.order", b"order %d" % step)
            if step % 40 == 0:
                channel.queue_purge("audit")
            setup.sleep(period)
        setup.close()

    def consume() -> None:
        worker = connect("billing-worker")
        consumer = worker.channel()
        consumer.basic_qos(prefetch_count=20)
        pending: list[int] = []
        consumer.basic_consume("orders.eu", lambda ch, method, props, body: pending.append(
            method.delivery_tag), consumer_tag="billing")
        step = 0
        while not stop.is_set():
            step += 1
            for tag in pending[: 1 + step % 4]:
                pending.remove(tag)
                consumer.basic_ack(tag)
            worker.process_data_events(period)
        worker.close()

    threads = [threading.Thread(target=target, daemon=True) for target in (publish, consume)]
    for thread in threads:
        thread.start()
    return threads


def main() -> None:
    args = [arg for arg in sys.argv[1:] if not arg.startswith("--")]
    target = Path(args[0] if args else "docs/management-overview.png")
    every_page = "--pages" in sys.argv
    stop = threading.Event()
    with broker_in_thread(management=True, heartbeat=0) as broker:
        url = broker.management_url.rstrip("/")
        clients = demo_traffic(broker, stop)
        driver = browser()
        wait = WebDriverWait(driver, 15)
        try:
            driver.get(url + "/")
            wait.until(ready.visibility_of_element_located((By.ID, "login")))
            driver.find_element(By.NAME, "user").send_keys("guest")
            driver.find_element(By.NAME, "password").send_keys("guest")
            driver.find_element(By.CSS_SELECTOR, "#login button").click()
            wait.until(ready.text_to_be_present_in_element((By.ID, "who"), "guest"))
            driver.find_element(By.ID, "refresh").send_keys("2 s")
            wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, ".totals")))
            time.sleep(12)  # let the rate chart gather a few polls for the picture
            driver.save_screenshot(str(target))
            for page in PAGES if every_page else ():
                driver.get(f"{url}/#/{page}")
                wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#page h1")))
                time.sleep(0.5)
                driver.save_screenshot(str(target.with_name(
                    f"{target.stem}-{page.replace('/', '-').replace('%2F', '')}.png")))
            exercise(driver, wait, url)
            errors = console_errors(driver)
        finally:
            driver.quit()
            stop.set()
            for client in clients:
                client.join()
    if errors:
        raise SystemExit("the page logged errors:\n" + "\n".join(errors))
    print(f"saved {target}")


if __name__ == "__main__":
    main()
