"""The demo page of a seeded generator (seed, psi, class): the seed's image as the reference draws it.

``DemoModel.generate_seed`` is what the page runs; the browser test starts ``vgzoo demo`` as a user does and drives
the page in headless Chromium (Debian's chromium + chromium-driver) with Selenium, as vgzoo's own demo tests do.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _sg2_fixtures import REF, needs_ref
from vgzoo_stylegan2.snapshot import convert_snapshot

import vgzoo


def converted(name: str, **kwargs):
    config, state_dict = convert_snapshot(REF / f"{name}.pkl")
    model = vgzoo.create("stylegan2_cifar" if config["c_dim"] else "stylegan2", **config, **kwargs)
    model.load_state_dict(state_dict)
    return model.eval()


def reference_png(img: torch.Tensor) -> np.ndarray:
    """The reference's generate.py conversion of one image (C, H, W) in [-1, 1] to HWC uint8."""
    return (img.permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()


def seed_image(model, seed: int, psi: float, label: int | None) -> np.ndarray:
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, model.z_dim))
    c = torch.nn.functional.one_hot(torch.tensor([label]), model.c_dim).float() if label is not None else None
    with torch.no_grad():
        return reference_png(model.G_ema(z, c, truncation_psi=psi, noise_mode="const")[0])


@needs_ref
def test_demo_model_draws_the_seed_image():
    from vgzoo.share.demo import DemoModel

    model = converted("tiny_cond", class_names=[f"c{i}" for i in range(10)])
    demo = DemoModel(model, device="cpu", precision="fp32")
    assert demo.seeded
    image = np.asarray(demo.generate_seed(3, 0.6, "c7"))
    assert np.array_equal(image, seed_image(model, 3, 0.6, 7))
    assert np.array_equal(np.asarray(demo.generate_seed(3, 0.6, 7)), image)
    with pytest.raises(ValueError, match="not a class name"):
        demo.generate_seed(3, 0.6, "dog")
    with pytest.raises(ValueError, match=r"outside \[0, 2\*\*32\)"):
        demo.generate_seed(-1)
    uncond = DemoModel(converted("tiny_uncond"), device="cpu", precision="fp32")
    assert np.array_equal(np.asarray(uncond.generate_seed(5)), seed_image(uncond.model, 5, 1.0, None))


@pytest.fixture
def browser():
    """Headless Chromium as vgzoo's own demo tests drive it (skipped where Chromium, Selenium or Gradio is missing)."""
    share = pytest.importorskip("test_share_browser")
    options = share.webdriver.ChromeOptions()
    options.binary_location = share.CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(arg)
    driver = share.webdriver.Chrome(service=share.Service(share.DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@needs_ref
@pytest.mark.slow
def test_demo_page_in_headless_chromium(tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
    from test_share_browser import Served, open_page, output_image

    model = converted("tiny_cond", class_names=[f"c{i}" for i in range(10)])
    vgzoo.save_pretrained(model, tmp_path / "sg2")
    served = Served.cli(str(tmp_path / "sg2"), "--device", "cpu", "--precision", "fp32", cwd=tmp_path)
    try:
        url = served.wait()[0]
        open_page(browser, url)
        body = browser.find_element(By.TAG_NAME, "body").text
        assert "Truncation (psi)" in body and "Seed" in body and "Class" in body
        seed = browser.find_element(By.CSS_SELECTOR, "#seed input")
        seed.send_keys(Keys.CONTROL, "a")
        seed.send_keys("3", Keys.TAB)
        psi = browser.find_element(By.CSS_SELECTOR, "#truncation input[type=number]")
        psi.send_keys(Keys.CONTROL, "a")
        psi.send_keys("0.6", Keys.TAB)
        choice = browser.find_element(By.CSS_SELECTOR, "#class input")
        choice.click()
        WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "[role=option]"))
        next(o for o in browser.find_elements(By.CSS_SELECTOR, "[role=option]") if o.text.strip() == "c7").click()
        browser.find_element(By.CSS_SELECTOR, "#run").click()
        image = output_image(browser, url)
        assert np.array_equal(np.asarray(image.convert("RGB")), seed_image(model, 3, 0.6, 7))
    finally:
        served.stop()
