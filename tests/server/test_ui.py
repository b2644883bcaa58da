"""``/ui`` in headless Chromium (Debian's chromium + chromedriver, driven
by selenium): load the inspector, resume an interrupted thread through its
form, and see the thread finish. ``UI_SCREENSHOT_PATH=<path>`` keeps a
screenshot (the README's comes from here)."""

from __future__ import annotations

import os
import shutil

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = [pytest.mark.integration, pytest.mark.distributed, pytest.mark.timeout(180)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'profile'}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_resume_an_interrupted_thread_through_the_form(sdk, server, browser):
    tid = sdk.threads.create(metadata={"case": "ui"})["thread_id"]
    sdk.runs.wait(tid, "approval", input={"request": "a refund of 30 EUR"})
    assert sdk.threads.get(tid)["status"] == "interrupted"

    browser.get(f"{server.url}/ui?thread={tid}")
    wait = WebDriverWait(browser, 60)
    wait.until(ec.text_to_be_present_in_element((By.ID, "tid"), tid))
    # The thread list, the pending interrupt and the run's timeline are shown.
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, f"#threads tr[data-id='{tid}']")))
    assert "approve a refund of 30 EUR?" in wait.until(ec.visibility_of_element_located((By.ID, "interrupts"))).text
    wait.until(lambda d: "ask" in d.find_element(By.ID, "timeline").text)
    assert "(pid " in browser.find_element(By.ID, "timeline").text  # the worker process that ran the node
    assert "interrupted" in browser.find_element(By.ID, "tstatus").text
    if os.environ.get("UI_SCREENSHOT_PATH"):
        browser.save_screenshot(os.environ["UI_SCREENSHOT_PATH"])

    browser.find_element(By.ID, "resume-value").send_keys('"approved"')
    browser.find_element(By.ID, "resume").click()
    wait.until(lambda d: "idle" in d.find_element(By.ID, "tstatus").text)
    wait.until(lambda d: '"acted:approved"' in d.find_element(By.ID, "state").text)
    state = sdk.threads.get_state(tid)
    assert state["next"] == [] and state["values"]["decision"] == "approved"
    assert sdk.threads.get(tid)["status"] == "idle"


def test_fork_from_a_checkpoint(sdk, server, browser):
    tid = sdk.threads.create()["thread_id"]
    sdk.runs.wait(tid, "counter", input={"n": 2})
    runs_before = len(sdk.runs.list(tid))
    browser.get(f"{server.url}/ui?thread={tid}")
    wait = WebDriverWait(browser, 60)
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "button.fork")))
    # Fork from the oldest checkpoint (the last row): the run replays from there.
    browser.find_elements(By.CSS_SELECTOR, "button.fork")[-1].click()
    wait.until(lambda d: len(sdk.runs.list(tid)) == runs_before + 1)
    wait.until(lambda d: sdk.runs.list(tid)[0]["status"] == "success")
    assert sdk.threads.get_state(tid)["values"] == {"n": 5, "trail": [2, 3, 4]}
