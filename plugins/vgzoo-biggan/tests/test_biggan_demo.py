"""vgzoo demo's seeded page for BigGAN in headless Chromium: ImageNet class names, truncation and seed -> the image
vgzoo generate writes for them. The browser helpers are vgzoo's own (tests/test_share_browser.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _biggan_fixtures import REPO  # noqa: F401  (puts vgzoo's tests/ on the path)
from test_share_browser import Served, browser, open_page, output_image  # noqa: F401  (browser: a fixture)
from vgzoo_biggan.model import TINY

import vgzoo

By = pytest.importorskip("selenium.webdriver.common.by").By
Keys = pytest.importorskip("selenium.webdriver.common.keys").Keys


@pytest.mark.slow
def test_seeded_page_picks_a_class_by_name(browser, tmp_path):  # noqa: F811
    folder = tmp_path / "model"
    torch.manual_seed(0)
    model = vgzoo.create("biggan", **{**TINY, "num_classes": 1000, "class_names": "imagenet-1k",
                                      "default_truncation": 0.5})
    vgzoo.save_pretrained(model, folder)
    server = Served.cli(f"local-dir:{folder}", "--precision", "fp32", cwd=tmp_path)
    try:
        url = server.wait()[0]
        open_page(browser, url)
        assert browser.find_element(By.CSS_SELECTOR, "#class input").get_attribute("value") == "tench"
        seed = browser.find_element(By.CSS_SELECTOR, "#seed input")
        seed.clear()
        seed.send_keys("3")
        picker = browser.find_element(By.CSS_SELECTOR, "#class input")
        picker.click()
        picker.send_keys(Keys.CONTROL, "a")
        picker.send_keys("tiger cat")
        picker.send_keys(Keys.ENTER)
        browser.find_element(By.CSS_SELECTOR, "#run").click()
        shown = np.asarray(output_image(browser, url).convert("RGB")).astype(int)
    finally:
        server.stop()
    again = vgzoo.create(f"local-dir:{folder}").eval()
    with torch.no_grad():
        image = again.generate_images(again.latents_for_seeds([3], 0.5), torch.tensor([282]), 0.5)[0]
    expected = (image * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy().astype(int)
    assert shown.shape == expected.shape and np.abs(shown - expected).max() <= 1
