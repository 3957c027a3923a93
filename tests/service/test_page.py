"""The web page in a real headless Chromium (Debian's package, driven by Selenium with
Debian's chromedriver: nothing is downloaded); skipped where either is absent."""

from __future__ import annotations


def test_rate_three_films_and_compare_two_models(browser, base_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30)
    browser.get(base_url + "/")
    wait.until(ec.text_to_be_present_in_element((By.ID, "about"), "can answer a new user"))
    films = (("star wars", "Star Wars (1977)", 5), ("fargo", "Fargo (1996)", 4),
             ("toy story", "Toy Story (1995)", 3))
    for query, title, rating in films:
        box = browser.find_element(By.ID, "query")
        box.clear()
        box.send_keys(query)
        first = (By.CSS_SELECTOR, "#found li:first-child")
        wait.until(ec.text_to_be_present_in_element(first, title))  # this query's answer
        browser.find_element(By.CSS_SELECTOR,
                             f"#found li:first-child button[data-rating='{rating}']").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "rated"), f"{title} ({rating})"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#rated li")) == 3
    Select(browser.find_element(By.ID, "left")).select_by_value("ease")
    Select(browser.find_element(By.ID, "right")).select_by_value("mult-vae")
    browser.find_element(By.ID, "go").click()
    for side in ("left", "right"):
        wait.until(lambda d, side=side: len(d.find_elements(
            By.CSS_SELECTOR, f"#{side}-list li")) == 10)
    left = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#left-list li")]
    assert browser.find_element(By.ID, "left-name").text == "ease"
    assert browser.find_element(By.ID, "right-name").text == "mult-vae"
    assert not any(t.startswith(("Star Wars (1977)", "Fargo (1996)", "Toy Story (1995)"))
                   for t in left)
    assert browser.find_element(By.ID, "problem").text == ""
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
