"""The HTML report: one self-contained page, in the documented order, for every task."""

import base64
import re

import pytest
import torch

from i2moe.interpret.analysis import analyse
from i2moe.interpret.report import image_data_uri, render_report

from .conftest import hand_outputs

DATA_URI = re.compile(r"data:image/png;base64,[A-Za-z0-9+/=]+")


def assert_self_contained(page: str) -> None:
    without_images = DATA_URI.sub("", page)
    for reference in ("http://", "https://", "//", "url(", "<script", "<link", "@import"):
        assert reference not in without_images.lower(), reference
    sources = re.findall(r'src="([^"]*)"', page)
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert all(h.startswith("#") for h in hrefs)  # only links within the page


def test_report_of_a_trained_model_is_self_contained(explained):
    explanation, output = explained
    page = (output / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert_self_contained(page)
    images = re.findall(r'src="(data:image/png;base64,[^"]*)"', page)
    assert len(images) == len(explanation.figures)
    png = base64.b64decode(images[0].split(",", 1)[1])
    assert png.startswith(b"\x89PNG")


def test_report_order_global_then_tables_then_samples(explained):
    explanation, output = explained
    page = (output / "report.html").read_text(encoding="utf-8")
    positions = [
        page.index(f'id="{section}"')
        for section in ("global", "performance", "agreement", "sensitivity", "groups", "samples")
    ]
    assert positions == sorted(positions)
    for sample in explanation.chosen:
        assert page.index(f'id="sample-{sample}"') > positions[-1]
    assert "experts agree" in page and "final prediction correct" in page


def test_report_marks_missing_modalities():
    observed = torch.ones(5, 2, dtype=torch.bool)
    observed[3, 0] = False
    explanation = analyse(hand_outputs(observed=observed), samples=[3])
    page = render_report(explanation, {})
    section = page[page.index('id="sample-3"') :]
    assert "Missing modalities: a" in section
    assert "modality missing" in section
    assert "missing: a" in section  # in the sample's title


def test_report_escapes_names():
    explanation = analyse(
        hand_outputs(), class_names=["<b>bad</b>", "a&b"], context={"run": "<run>"}
    )
    page = render_report(explanation, {}, title="T <1>")
    assert "<b>bad</b>" not in page and "&lt;b&gt;bad&lt;/b&gt;" in page
    assert "&lt;run&gt;" in page and "<title>T &lt;1&gt;</title>" in page
    assert_self_contained(page)


@pytest.mark.parametrize("task", ["multilabel", "regression"])
def test_report_for_other_tasks(task):
    num_outputs = 2 if task == "multilabel" else 1
    generator = torch.Generator().manual_seed(0)
    outputs = torch.randn(6, 2, num_outputs, generator=generator)
    weights = torch.rand(6, 2, generator=generator).softmax(-1)
    target = (
        (torch.rand(6, 2, generator=generator) > 0.5).float()
        if task == "multilabel"
        else torch.randn(6, 1, generator=generator)
    )
    explanation = analyse(
        hand_outputs(outputs, weights, target, task=task, expert_names=["syn", "red"]),
        tolerance=0.3,
    )
    page = render_report(explanation, {})
    assert_self_contained(page)
    if task == "regression":
        assert "within the tolerance (0.3)" in page
    else:
        assert "same set of labels" in page


def test_image_data_uri(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\nabc")
    uri = image_data_uri(path)
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == path.read_bytes()
