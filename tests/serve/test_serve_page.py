"""The chat page at GET / in a real browser: headless Chromium driven by Selenium against a real
`outboard serve` on 127.0.0.1.

A person's session with the default model (Gemma 3 270M, whose chat template the page's requests
go through): type a message (Shift+Enter for a new line, Enter to send) and see the answer with
its token counts, tok/s and the context bar; stop a long answer mid-stream with Esc and see the
server stop generating; regenerate; edit the first question and resend; reload and find the
conversation; export it as JSON, delete it, import it back; a malformed import and a prompt
longer than the context each show the server's or the page's error. Imported model text with
HTML and markdown shows that the page renders markdown and never runs model text as HTML. A
server with an API key serves the page without one, and the page lists the models once the key
is entered. The test saves a screenshot in the build folder; with OB_UPDATE_SCREENSHOT=1 it
replaces docs/chat-page.png, the one the README shows.

Skips, saying why, when selenium, chromium or chromedriver is missing (CI installs them:
scripts/apt-packages.txt, tests/requirements.txt).
"""
import json
import os
import re
import shutil
import time

import pytest

from test_serve_http import KEY, MODEL, MODEL_ID, ROOT, Server

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

DEFAULT_MODEL = os.environ.get("OB_DEFAULT_MODEL",
                               os.path.join(ROOT, "models", "gemma-3-270m-q4_k_m.gguf"))
CTX = 1024
# Generous: under `make check` the server runs with sanitizers.
WAIT_S = 120
SCREENSHOT = (os.path.join(ROOT, "docs", "chat-page.png")
              if os.environ.get("OB_UPDATE_SCREENSHOT") == "1"
              else os.path.join(os.environ.get("OB_BUILD", os.path.join(ROOT, "build")),
                                "chat-page.png"))


def find_browser():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    binary, driver_path = find_browser(), shutil.which("chromedriver")
    if not binary or not driver_path:
        pytest.skip("chromium and chromedriver are needed (Debian: chromium chromium-driver)")
    downloads = str(tmp_path_factory.mktemp("downloads"))
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1200,800", "--force-prefers-reduced-motion"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {"download.default_directory": downloads,
                                           "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=webdriver.ChromeService(driver_path), options=opts)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": downloads})
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def server():
    if not os.path.exists(DEFAULT_MODEL):
        pytest.skip(f"{DEFAULT_MODEL} absent (scripts/fetch-default-model.sh)")
    s = Server("--ctx", CTX, model=DEFAULT_MODEL)
    try:
        yield s
    finally:
        s.stop()


def wait(driver, cond, what, timeout=WAIT_S):
    try:
        # The page redraws a streaming reply, so an element read a moment ago may be gone.
        return WebDriverWait(driver, timeout, poll_frequency=0.05,
                             ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda d: cond())
    except TimeoutException:
        raise AssertionError(f"timed out waiting for {what}; page error: "
                             f"{driver.find_element(By.ID, 'error').text!r}") from None


def by_id(driver, name):
    return driver.find_element(By.ID, name)


def messages(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#messages .msg")


def bodies(driver):
    return [(m.get_attribute("class").split()[1], m.find_element(By.CLASS_NAME, "body").text)
            for m in messages(driver)]


def wait_reply_done(driver):
    wait(driver, lambda: not by_id(driver, "stop").is_displayed(), "the reply to finish")


def set_field(driver, name, value):
    """Types into a settings field as a person would, then leaves it (the page saves on change)."""
    field = by_id(driver, name)
    field.clear()
    field.send_keys(str(value), Keys.TAB)


def open_settings(driver):
    details = by_id(driver, "settings")
    if not details.get_attribute("open"):
        details.find_element(By.TAG_NAME, "summary").click()


def metric(server, name):
    status, body, _ = server.request("GET", "/metrics")
    assert status == 200
    m = re.search(rf"^{name} (\d+)$", body.decode(), re.M)
    assert m, name
    return int(m.group(1))


def last_stats(driver):
    """The last reply's stats line parsed: prompt tokens, reply tokens, tok/s."""
    text = messages(driver)[-1].find_element(By.CLASS_NAME, "stats").text
    m = re.match(r"(\d+) prompt tokens · (\d+) reply tokens · ([\d.]+) tok/s · (.+)$", text)
    assert m, text
    return int(m.group(1)), int(m.group(2)), float(m.group(3)), m.group(4)


def test_plain_clients_get_text_browsers_get_the_page(server):
    status, body, headers = server.request("GET", "/")
    assert status == 200 and body == b"outboard is running\n"
    status, body, headers = server.request("GET", "/", headers={"Accept": "text/html"})
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert body.startswith(b"<!doctype html>") and b"/v1/chat/completions" in body
    # Offline: the page loads nothing from other hosts.
    assert not re.search(rb"""(src|href)=["']?(https?:)?//""", body)


def test_chat_session(browser, server):
    d = browser
    d.get(server.url + "/")
    model_id = os.path.basename(DEFAULT_MODEL)[:-len(".gguf")]
    wait(d, lambda: by_id(d, "model").get_attribute("value") == model_id, "the model picker")
    assert by_id(d, "ctxtext").text == f"0 / {CTX}"
    assert d.switch_to.active_element == by_id(d, "input")  # ready to type

    # Short, reproducible answers.
    open_settings(d)
    set_field(d, "max_tokens", 12)
    set_field(d, "temperature", 0)
    set_field(d, "seed", 7)

    # Type: Shift+Enter is a new line, Enter sends.
    box = by_id(d, "input")
    box.send_keys("Name three colours.", Keys.SHIFT, Keys.ENTER, Keys.SHIFT, "One line please.")
    assert box.get_attribute("value") == "Name three colours.\nOne line please."
    box.send_keys(Keys.ENTER)
    wait(d, lambda: len(messages(d)) == 2, "the reply to start")
    wait_reply_done(d)
    (role_u, text_u), (role_a, text_a) = bodies(d)
    assert (role_u, text_u) == ("user", "Name three colours.\nOne line please.")
    assert role_a == "assistant" and text_a.strip()
    prompt_tokens, reply_tokens, tps, shown_model = last_stats(d)
    assert 0 < reply_tokens <= 12 and prompt_tokens > 5 and tps > 0 and shown_model == model_id
    assert by_id(d, "ctxtext").text == f"{prompt_tokens + reply_tokens} / {CTX}"
    width = by_id(d, "ctxfill").value_of_css_property("width")
    assert float(width.rstrip("px")) > 0
    assert d.find_element(By.CSS_SELECTOR, "#convs li.current .open").text == "Name three colours."

    # A long answer, stopped with Esc while it streams: the partial text stays, marked stopped,
    # and the server stops generating (the closed connection cancels the sequence).
    set_field(d, "max_tokens", 900)
    set_field(d, "temperature", 0.8)
    box = by_id(d, "input")
    box.send_keys("Tell me a long story about a lighthouse keeper.", Keys.ENTER)
    partial = wait(d, lambda: len(messages(d)) == 4 and bodies(d)[3][1].strip(), "streamed text")
    assert by_id(d, "stop").is_displayed()  # still streaming: the text arrived before the end
    generated_before = metric(server, "outboard_generated_tokens_total")
    d.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait_reply_done(d)
    stopped = messages(d)[3]
    assert stopped.find_element(By.CLASS_NAME, "note").text == "Stopped."
    assert bodies(d)[3][1].startswith(partial.rstrip()[:20])
    wait(d, lambda: metric(server, "outboard_sequences_running") == 0, "the server to cancel", 30)
    generated_after = metric(server, "outboard_generated_tokens_total")
    assert generated_after - generated_before < 900
    time.sleep(0.3)
    assert metric(server, "outboard_generated_tokens_total") == generated_after

    # Regenerate replaces the stopped answer with a new, complete one.
    set_field(d, "max_tokens", 12)
    requests_before = metric_requests(server)
    messages(d)[3].find_element(By.CLASS_NAME, "regenerate").click()
    wait(d, lambda: by_id(d, "stop").is_displayed() or metric_requests(server) > requests_before,
         "the regenerated request")
    wait_reply_done(d)
    assert len(messages(d)) == 4
    assert not messages(d)[3].find_elements(By.CLASS_NAME, "note")
    assert 0 < last_stats(d)[1] <= 12
    assert metric_requests(server) == requests_before + 1

    # Edit the first question and resend: what followed it is replaced.
    set_field(d, "temperature", 0)
    set_field(d, "max_tokens", 24)
    by_id(d, "settings").find_element(By.TAG_NAME, "summary").click()  # folded for the picture
    messages(d)[0].find_element(By.CLASS_NAME, "edit").click()
    editor = messages(d)[0].find_element(By.CSS_SELECTOR, "textarea.edit")
    editor.clear()
    editor.send_keys("Say hello in French.")
    messages(d)[0].find_element(By.CLASS_NAME, "resend").click()
    wait(d, lambda: len(messages(d)) == 2, "the conversation to restart")
    wait_reply_done(d)
    after_edit = bodies(d)
    assert after_edit[0] == ("user", "Say hello in French.")
    assert after_edit[1][0] == "assistant" and after_edit[1][1].strip()
    assert 0 < last_stats(d)[1] <= 24
    assert d.find_element(By.CSS_SELECTOR, "#convs li.current .open").text == "Say hello in French."
    d.save_screenshot(SCREENSHOT)

    # Reload: the conversation is still there, with its stats.
    d.refresh()
    wait(d, lambda: len(messages(d)) == 2, "the conversation after reload")
    assert bodies(d) == after_edit
    assert last_stats(d)[3] == model_id

    # Export, delete, import back.
    by_id(d, "export").click()
    path = os.path.join(d.downloads, "outboard-chats.json")
    wait(d, lambda: os.path.exists(path) and os.path.getsize(path) > 0, "the export file", 30)
    with open(path) as f:
        exported = json.load(f)
    assert exported["format"] == "outboard-chat" and len(exported["conversations"]) == 1
    conv = exported["conversations"][0]
    # The page shows the text rendered; compare words.
    assert [(m["role"], m["content"].split()) for m in conv["messages"]] == \
        [(r, t.split()) for r, t in after_edit]
    d.find_element(By.CSS_SELECTOR, "#convs li .del").click()
    assert not d.find_elements(By.CSS_SELECTOR, "#convs li") and not messages(d)
    by_id(d, "importfile").send_keys(path)
    wait(d, lambda: len(messages(d)) == 2, "the imported conversation")
    assert bodies(d) == after_edit

    # A file that is not a conversation export: the page says what is wrong and keeps its data.
    bad = os.path.join(d.downloads, "bad.json")
    with open(bad, "w") as f:
        json.dump({"conversations": [{"messages": [{"role": "robot", "content": "x"}]}]}, f)
    by_id(d, "importfile").send_keys(bad)
    wait(d, lambda: by_id(d, "error").is_displayed(), "the import error")
    assert "bad.json" in by_id(d, "error").text and "messages[0]" in by_id(d, "error").text
    assert len(d.find_elements(By.CSS_SELECTOR, "#convs li")) == 1

    # A prompt longer than the context: the server's refusal, naming both counts, is shown and
    # the question stays to be edited.
    d.find_element(By.ID, "new").click()
    long_prompt = "lighthouse " * 1500
    d.execute_script("arguments[0].value = arguments[1]", by_id(d, "input"), long_prompt)
    by_id(d, "input").send_keys(Keys.END, Keys.ENTER)
    wait(d, lambda: by_id(d, "error").is_displayed() and "refused" in by_id(d, "error").text,
         "the refusal")
    err = by_id(d, "error").text
    m = re.search(r"400: messages: (\d+) tokens, the context holds (\d+)", err)
    assert m, err
    assert int(m.group(1)) > CTX and int(m.group(2)) == CTX
    assert [r for r, _ in bodies(d)] == ["user"]
    # The server still answers.
    assert server.request("GET", "/health")[0] == 200


def metric_requests(server):
    status, body, _ = server.request("GET", "/metrics")
    return sum(int(n) for n in re.findall(
        r'^outboard_requests_total\{route="/v1/chat/completions",status="200"\} (\d+)$',
        body.decode(), re.M))


# Model text that would run script or draw elements if it were parsed as HTML, and markdown.
HOSTILE = ("# Title\n\nSome **bold** and *soft* text with `x<y` inline.\n\n"
           "```python\nprint('<b>not bold</b>')\n```\n\n"
           "- one\n- two <img src=x onerror=\"window.pwned=1\">\n\n"
           "[a link](https://example.com/) and [bad](javascript:alert(1))\n\n"
           "<script>window.pwned=2</script>")


def test_markdown_rendered_and_html_never_run(browser, server, tmp_path):
    d = browser
    d.get(server.url + "/")
    wait(d, lambda: by_id(d, "model").get_attribute("value"), "the model picker")
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps({"conversations": [{"title": "markdown", "messages": [
        {"role": "user", "content": "<i>not italic</i>"},
        {"role": "assistant", "content": HOSTILE},
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": "", "reasoning": "The user wants <b>weather</b>.",
         "tool_calls": [{"id": "call_1", "type": "function", "function": {
             "name": "get_weather", "arguments": "{\"city\": \"<Paris>\"}"}}],
         "stats": {"prompt_tokens": 9, "completion_tokens": 14, "tps": 41.5}}]}]}))
    by_id(d, "importfile").send_keys(str(path))
    wait(d, lambda: len(messages(d)) == 4, "the imported conversation")
    user, reply, _, call = messages(d)
    assert user.find_element(By.CLASS_NAME, "body").text == "<i>not italic</i>"
    assert not user.find_elements(By.TAG_NAME, "i")
    body = reply.find_element(By.CLASS_NAME, "body")
    assert body.find_element(By.TAG_NAME, "h1").text == "Title"
    assert body.find_element(By.TAG_NAME, "strong").text == "bold"
    assert body.find_element(By.TAG_NAME, "em").text == "soft"
    assert body.find_element(By.CSS_SELECTOR, "p code").text == "x<y"
    code = body.find_element(By.CSS_SELECTOR, "pre code.lang-python")
    assert code.text == "print('<b>not bold</b>')"
    assert [li.text for li in body.find_elements(By.CSS_SELECTOR, "ul li")] == \
        ["one", 'two <img src=x onerror="window.pwned=1">']
    links = body.find_elements(By.TAG_NAME, "a")
    assert [a.get_attribute("href") for a in links] == ["https://example.com/"]
    assert "[bad](javascript:alert(1))" in body.text
    assert "<script>window.pwned=2</script>" in body.text
    assert not body.find_elements(By.CSS_SELECTOR, "img, script, b")
    # Reasoning is folded (shown once opened), the tool call named with its arguments.
    reasoning = call.find_element(By.CSS_SELECTOR, "details.reasoning")
    assert not reasoning.get_attribute("open")
    assert not reasoning.find_element(By.TAG_NAME, "div").is_displayed()
    reasoning.find_element(By.TAG_NAME, "summary").click()
    assert reasoning.find_element(By.TAG_NAME, "div").text == "The user wants <b>weather</b>."
    tool = call.find_element(By.CLASS_NAME, "toolcall")
    assert tool.find_element(By.TAG_NAME, "strong").text == "get_weather"
    assert tool.find_element(By.TAG_NAME, "code").text == '{"city": "<Paris>"}'
    assert call.find_element(By.CLASS_NAME, "stats").text == \
        "9 prompt tokens · 14 reply tokens · 41.5 tok/s"
    assert d.execute_script("return window.pwned === undefined")

    # An export whose tool calls are not a list is refused, naming the field; nothing changes.
    count = len(d.find_elements(By.CSS_SELECTOR, "#convs li"))
    path.write_text(json.dumps({"conversations": [{"messages": [
        {"role": "assistant", "content": "", "tool_calls": "oops"}]}]}))
    by_id(d, "importfile").send_keys(str(path))
    wait(d, lambda: by_id(d, "error").is_displayed(), "the import error")
    assert "messages[0].tool_calls: expected an array" in by_id(d, "error").text
    assert len(d.find_elements(By.CSS_SELECTOR, "#convs li")) == count


def test_page_without_key_then_models_with_it(browser):
    s = Server("--api-key", KEY, model=MODEL)
    try:
        status, body, _ = s.request("GET", "/", headers={"Accept": "text/html"})
        assert status == 200 and body.startswith(b"<!doctype html>")
        d = browser
        d.get(s.url + "/")
        wait(d, lambda: by_id(d, "error").is_displayed(), "the key error")
        assert "401" in by_id(d, "error").text and "API key" in by_id(d, "error").text
        open_settings(d)
        set_field(d, "apikey", KEY)
        wait(d, lambda: by_id(d, "model").get_attribute("value") == MODEL_ID, "the model list")
        # The key is kept for the next visit; later tests start from a clean browser profile.
        d.execute_script("localStorage.clear()")
    finally:
        s.stop()
