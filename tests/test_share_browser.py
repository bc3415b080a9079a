"""vgzoo demo in a real browser: headless Chromium (Debian's chromium + chromium-driver) driven by Selenium.

`vgzoo demo` is started as a user would start it, the page is driven like a user would drive it (tick, upload,
click), and the output image is fetched from the page and decoded. One browser serves the whole module.
Screenshots go to a temporary folder, or to docs/img/ with VGZOO_DOCS_SCREENSHOTS=1 (how docs/share.md's were made,
with VGZOO_DOCS_TRANSLATOR and VGZOO_DOCS_GENERATOR naming trained folders to show instead of random weights).
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

import vgzoo

pytest.importorskip("gradio", reason="the demo extra (pip install 'vgzoo[demo]') is not installed")
pytest.importorskip("selenium", reason="selenium (in the dev extra) is not installed")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    pytest.skip("Chromium and its driver are not installed (Debian: apt-get install chromium chromium-driver; "
                ".ci/run does it)", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
START_TIMEOUT = 180  # seconds for `vgzoo demo` to import torch + gradio and serve, on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen | None = None, log: Path | None = None,
              timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the demo exited with {proc.returncode}: {log.read_text() if log else ''}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout} s")


class Served:
    """A process serving demo pages on free ports of 127.0.0.1; started at once, waited for when needed."""

    def __init__(self, argv: list[str], ports: list[int], cwd: Path) -> None:
        self.urls = [f"http://127.0.0.1:{p}/" for p in ports]
        self.log = cwd / f"demo-{ports[0]}.log"
        env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)

    @classmethod
    def cli(cls, *args: str, cwd: Path) -> Served:
        """``vgzoo demo ARGS --port P``, as a user starts it."""
        port = free_port()
        return cls([sys.executable, "-m", "vgzoo", "demo", *args, "--port", str(port)], [port], cwd)

    def wait(self) -> list[str]:
        try:
            for url in self.urls:
                wait_http(url, self.proc, self.log)
        except BaseException:
            self.stop()
            raise
        return self.urls

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    if os.environ.get("VGZOO_DOCS_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        return DOCS_IMG
    return tmp_path_factory.mktemp("screenshots")


def open_page(driver, url: str) -> None:
    driver.get(url)
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#run"))


def output_image(driver, url: str, previous: str | None = None, selector: str = "#output-image img") -> Image.Image:
    """Wait for the output <img>, fetch what its src names from the demo server and decode it."""

    def src(d):
        for img in d.find_elements(By.CSS_SELECTOR, selector):
            value = img.get_attribute("src")
            if value and value != previous and "/file=" in value:
                return value
        return False

    link = WebDriverWait(driver, 90).until(src)
    assert link.startswith(url.rstrip("/")), f"the image is served by the demo itself, got {link}"
    with urllib.request.urlopen(link, timeout=30) as r:
        data = r.read()
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def uploaded(driver, name: str) -> bool:
    """The file widget lists the upload (it shows the name's stem and suffix on separate lines)."""
    return name in driver.find_element(By.CSS_SELECTOR, "#upload").text.replace("\n", "")


def screenshot(driver, path: Path) -> None:
    driver.execute_script("window.scrollTo(0, 0)")
    time.sleep(0.5)  # let the image fade in
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1280, min(max(int(height) + 40, 700), 1400))
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 900)


_THREE_PAGES = """
import os, sys, time, vgzoo
from vgzoo.share.demo import DemoModel, launch_demo, load_demo_model
for name, port in zip(("vit_ti16_scratch", "gan_vanilla", "restoration_unet"), sys.argv[1:]):
    kwargs = {**vgzoo.model_info(name).test_kwargs, **({"img_size": 64} if name != "vit_ti16_scratch" else {})}
    model = vgzoo.create(name, **kwargs)
    if name == "gan_vanilla" and os.environ.get("VGZOO_DOCS_GENERATOR"):  # a trained folder, for the docs
        model = load_demo_model(os.environ["VGZOO_DOCS_GENERATOR"])
    launch_demo(DemoModel(model), port=int(port), block=False)
print("ready", flush=True)
time.sleep(900)
"""


@pytest.fixture(scope="module")
def servers(translator_dir, tmp_path_factory):
    """Every demo process of the module, started together so that their imports overlap."""
    cwd = tmp_path_factory.mktemp("servers")
    ports = [free_port() for _ in range(3)]
    started = {
        "cgan": Served.cli("cgan_embed_digits", "--pretrained", cwd=cwd),
        "translation": Served.cli(str(translator_dir), cwd=cwd),
        "others": Served([sys.executable, "-c", _THREE_PAGES, *map(str, ports)], ports, cwd),
    }
    yield started
    for served in started.values():
        served.stop()


def test_conditional_generation_page(browser, shots, servers):
    server = servers["cgan"]
    server.url = server.wait()[0]
    try:
        open_page(browser, server.url)
        assert "cgan_embed_digits" in browser.title
        body = browser.find_element(By.TAG_NAME, "body").text
        assert "conditional_generation" in body and "cgan_embed_digits.safetensors" in body
        # untick classes 5..9: five rows remain
        for box in browser.find_elements(By.CSS_SELECTOR, "#classes input[type=checkbox]")[5:]:
            box.click()
        browser.find_element(By.CSS_SELECTOR, "#run").click()
        grid = output_image(browser, server.url)
        assert grid.size == (8 * 66 + 2, 5 * 66 + 2)  # 8 per class, 5 classes, 64 px cells + 2 px padding
        assert len(grid.convert("L").getcolors(256) or []) > 16  # digits, not a flat picture
        screenshot(browser, shots / "demo_conditional_generation.png")
    finally:
        server.stop()


@pytest.fixture(scope="module")
def translator_dir(tmp_path_factory) -> Path:
    if os.environ.get("VGZOO_DOCS_TRANSLATOR"):  # a trained folder, for the docs' screenshot
        return Path(os.environ["VGZOO_DOCS_TRANSLATOR"])
    folder = tmp_path_factory.mktemp("demo") / "tiny-pix2pix"
    vgzoo.save_pretrained(vgzoo.create("pix2pix_unet128", ngf=8, ndf=8), folder)
    return folder


def make_photo(path: Path, size=(96, 64)) -> Path:
    """A small picture with shapes and colours, to upload."""
    from PIL import ImageDraw

    image = Image.radial_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.rectangle((w // 8, h // 5, w // 2, h - h // 5), fill=(200, 60, 40))
    draw.ellipse((w // 2, h // 6, w - w // 10, h // 2 + h // 6), fill=(40, 120, 220))
    image.save(path)
    return path


def test_translation_page(browser, shots, servers, tmp_path):
    photo = make_photo(tmp_path / "facade.png", (240, 160))
    server = servers["translation"]
    server.url = server.wait()[0]
    try:
        open_page(browser, server.url)
        browser.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(photo))
        WebDriverWait(browser, 60).until(lambda d: uploaded(d, "facade.png"))
        browser.find_element(By.CSS_SELECTOR, "#run").click()
        out = output_image(browser, server.url)
        assert out.size == (240, 160) and out.mode in ("RGB", "RGBA")
        shown = output_image(browser, server.url, selector="#input-image img")
        assert shown.size == (240, 160)
        link = WebDriverWait(browser, 30).until(
            lambda d: [a for a in d.find_elements(By.CSS_SELECTOR, "#download a") if a.get_attribute("href")])
        with urllib.request.urlopen(link[0].get_attribute("href"), timeout=30) as r:
            assert Image.open(io.BytesIO(r.read())).size == (240, 160)  # the download is the output PNG
        screenshot(browser, shots / "demo_translation.png")

        # a text file with an image's name is answered with a message, not a stack trace
        fake = tmp_path / "notes.png"
        fake.write_text("not a picture")
        open_page(browser, server.url)
        browser.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(fake))
        WebDriverWait(browser, 60).until(lambda d: uploaded(d, "notes.png"))
        browser.find_element(By.CSS_SELECTOR, "#run").click()
        WebDriverWait(browser, 60).until(lambda d: "is not an image" in d.find_element(By.TAG_NAME, "body").text)
        assert "Traceback" not in browser.find_element(By.TAG_NAME, "body").text
    finally:
        server.stop()



def test_classification_generation_and_restoration_pages(browser, shots, servers, tmp_path):
    photo = make_photo(tmp_path / "photo.png", (160, 120))
    served = servers["others"]
    try:
        classify, generate, restore = served.wait()

        open_page(browser, classify)
        browser.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(photo))
        WebDriverWait(browser, 60).until(lambda d: uploaded(d, "photo.png"))
        browser.find_element(By.CSS_SELECTOR, "#run").click()
        overlay = output_image(browser, classify)
        assert overlay.size == (160, 120)  # the attention rollout drawn over the upload
        WebDriverWait(browser, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#top5 .confidence-set,"
                                                                        " #top5 [data-testid='label-output-value']"))
                                         or d.find_element(By.CSS_SELECTOR, "#top5").text.count("%") >= 5)
        screenshot(browser, shots / "demo_classification.png")

        open_page(browser, generate)
        browser.find_element(By.CSS_SELECTOR, "#run").click()
        grid = output_image(browser, generate)
        assert grid.size == (4 * 66 + 2, 2 * 66 + 2)  # 8 samples of 64 px in 2 rows
        screenshot(browser, shots / "demo_generation.png")

        open_page(browser, restore)
        browser.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(photo))
        WebDriverWait(browser, 60).until(lambda d: uploaded(d, "photo.png"))
        browser.find_element(By.CSS_SELECTOR, "#run").click()
        assert output_image(browser, restore).size == (64, 64)
        assert output_image(browser, restore, selector="#input-image img").size == (64, 64)
        WebDriverWait(browser, 30).until(lambda d: d.find_element(By.CSS_SELECTOR, "#psnr textarea,#psnr input")
                                         .get_attribute("value"))
        screenshot(browser, shots / "demo_restoration.png")
    finally:
        served.stop()
