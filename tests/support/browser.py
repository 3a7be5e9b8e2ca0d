#!/usr/bin/env python3
"""Opens a page in headless Chromium, optionally fills in and submits its form.

    browser.py --url URL [--fill NAME=VALUE ...] [--submit]

Prints one JSON line: ``{"before": PAGE, "after": PAGE or null}`` where PAGE
is ``{"title", "text", "url"}`` (``text`` is the body's visible text).
``after`` is the page the submit led to, null without ``--submit``.

Uses Debian's browser and driver, never downloads one: ``ROSTER_TEST_CHROMIUM``
(default /usr/bin/chromium) and ``ROSTER_TEST_CHROMEDRIVER`` (default
/usr/bin/chromedriver). Any failure exits 1 with a message on stderr.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

# Selenium Manager must not go looking for (or download) a browser or driver.
os.environ.setdefault("SE_OFFLINE", "true")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

# Page loads and the navigation a submit starts.
TIMEOUT = 20
# Server-rendered pages have their fields at load; a missing one fails sooner.
ELEMENT_TIMEOUT = 10
SUBMIT = "button[type=submit], input[type=submit], button:not([type])"


class Failure(Exception):
    pass


def parse_fill(value):
    name, sep, text = value.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {value!r}")
    return name, text


def page(driver):
    return {
        "title": driver.title,
        "text": driver.find_element(By.TAG_NAME, "body").text,
        "url": driver.current_url,
    }


def find(driver, by, what, description):
    try:
        return WebDriverWait(driver, ELEMENT_TIMEOUT).until(
            EC.presence_of_element_located((by, what))
        )
    except WebDriverException as error:
        raise Failure(f"{description} not found on {driver.current_url}") from error


def submit_button(driver, field):
    """The submit button of the form ``field`` is in, else the page's first."""
    if field is not None:
        forms = field.find_elements(By.XPATH, "ancestor::form[1]")
        if forms:
            inside = forms[0].find_elements(By.CSS_SELECTOR, SUBMIT)
            if inside:
                return inside[0]
    return find(driver, By.CSS_SELECTOR, SUBMIT, "a submit button")


def run(args):
    chromium = os.environ.get("ROSTER_TEST_CHROMIUM", "/usr/bin/chromium")
    chromedriver = os.environ.get("ROSTER_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
    for path, package in ((chromium, "chromium"), (chromedriver, "chromium-driver")):
        if not os.path.exists(path):
            raise Failure(f"{path} does not exist: install Debian's {package}")

    profile = tempfile.mkdtemp(prefix="roster-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--window-size=1280,1024",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = None
    try:
        try:
            driver = webdriver.Chrome(
                service=Service(executable_path=chromedriver), options=options
            )
        except WebDriverException as error:
            raise Failure(f"cannot start {chromium} via {chromedriver}: {error.msg}")
        driver.set_page_load_timeout(TIMEOUT)
        driver.set_script_timeout(TIMEOUT)

        driver.get(args.url)
        before = page(driver)

        field = None
        for name, value in args.fill:
            field = find(driver, By.NAME, name, f"a field named {name!r}")
            field.clear()
            field.send_keys(value)

        after = None
        if args.submit:
            old = driver.find_element(By.TAG_NAME, "html")
            submit_button(driver, field).click()
            wait = WebDriverWait(driver, TIMEOUT)
            try:
                wait.until(EC.staleness_of(old))
                wait.until(
                    lambda d: d.execute_script("return document.readyState")
                    == "complete"
                )
            except WebDriverException as error:
                raise Failure(
                    f"no new page within {TIMEOUT}s of submitting {args.url}"
                ) from error
            after = page(driver)
        return {"before": before, "after": after}
    finally:
        if driver is not None:
            try:
                driver.quit()
            except WebDriverException:
                pass
        shutil.rmtree(profile, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument(
        "--fill",
        type=parse_fill,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="type VALUE into the field named NAME (repeatable)",
    )
    parser.add_argument("--submit", action="store_true", help="submit the form")
    args = parser.parse_args()
    try:
        result = run(args)
    except Failure as error:
        print(f"browser.py: {error}", file=sys.stderr)
        sys.exit(1)
    except WebDriverException as error:
        print(f"browser.py: webdriver: {error.msg or error!r}", file=sys.stderr)
        sys.exit(1)
    except Exception as error:  # noqa: BLE001 - one line, non-zero, for the test
        print(f"browser.py: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
    sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
