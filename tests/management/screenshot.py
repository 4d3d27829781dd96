"""Look at the web page in headless Chromium: log in, visit every page, save screenshots.

Not a test (browser tests come with the shell's listener): a tool to see the page work
against the demo server. Needs ``selenium`` and Debian's ``chromium`` and ``chromium-driver``::

    python -m tests.management.screenshot docs/management-overview.png [--pages]

(``--pages`` also saves a picture of every page beside the first.)

It fails on any error the page logs to the browser console.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

from tests.management.httpserver import ApiServer, demo_traffic

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
    form.find_element(By.NAME, "routing_key").send_keys("eu.page")
    form.find_element(By.NAME, "payload").send_keys("sent from the page")
    form.find_element(By.CSS_SELECTOR, "button").click()
    wait.until(ready.text_to_be_present_in_element((By.ID, "publish-result"), "published"))
    driver.get(f"{url}/#/queues/%2F/orders.eu")
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


def main() -> None:
    args = [arg for arg in sys.argv[1:] if not arg.startswith("--")]
    target = Path(args[0] if args else "docs/management-overview.png")
    every_page = "--pages" in sys.argv
    with ApiServer() as server:
        demo_traffic(server, period=0.25)
        driver = browser()
        wait = WebDriverWait(driver, 15)
        try:
            driver.get(server.url + "/")
            wait.until(ready.visibility_of_element_located((By.ID, "login")))
            driver.find_element(By.NAME, "user").send_keys("guest")
            driver.find_element(By.NAME, "password").send_keys("guest")
            driver.find_element(By.CSS_SELECTOR, "#login button").click()
            wait.until(ready.text_to_be_present_in_element((By.ID, "who"), "guest"))
            driver.find_element(By.ID, "refresh").send_keys("2 s")
            wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, ".totals")))
            time.sleep(9)  # let the rate chart gather a few polls for the picture
            driver.save_screenshot(str(target))
            for page in PAGES if every_page else ():
                driver.get(f"{server.url}/#/{page}")
                wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#page h1")))
                time.sleep(0.5)
                driver.save_screenshot(str(target.with_name(
                    f"{target.stem}-{page.replace('/', '-').replace('%2F', '')}.png")))
            exercise(driver, wait, server.url)
            errors = console_errors(driver)
        finally:
            driver.quit()
    if errors:
        raise SystemExit("the page logged errors:\n" + "\n".join(errors))
    print(f"saved {target}")


if __name__ == "__main__":
    main()
