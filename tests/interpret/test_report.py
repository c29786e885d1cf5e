"""The HTML report: one self-contained page, in the documented order, for every task."""

import base64
import json
import re

import pytest
import torch

from i2moe.interpret.analysis import analyse
from i2moe.interpret.files import write_explanation
from i2moe.interpret.report import image_data_uri, read_robustness, render_report

from .conftest import hand_explanation, hand_outputs

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


def _details(distinguishable: bool) -> dict:
    """``attribution_methods.json`` of two methods, the default one ``rule``."""
    method = {
        "description": "the rule",
        "shares": {"uni_a": 0.1, "uni_b": 0.1, "syn": 0.42, "red": 0.38},
        "intervals": {
            "uni_a": [0.05, 0.15],
            "uni_b": [0.05, 0.15],
            "syn": [0.40, 0.44] if distinguishable else [0.35, 0.5],
            "red": [0.36, 0.39] if distinguishable else [0.3, 0.45],
        },
        "top": "syn",
        "second": "red",
        "distinguishable": distinguishable,
        "median_confidence": 0.31,
        "faithfulness": None,
    }
    return {
        "method": "rule",
        "description": "the rule",
        "paper_method": "weights",
        "bootstrap": {"draws": 1000, "level": 0.95, "seed": 0},
        "methods": {"rule": method, "weights": {**method, "description": "the weights"}},
    }


def test_report_says_when_the_top_interaction_is_not_distinguishable():
    explanation = hand_explanation()
    page = render_report(explanation, {}, attribution=_details(False))
    sentence = (
        "The top interaction (syn) is not distinguishable from the second (red) on these samples"
    )
    assert sentence in page
    assert "0.420 [0.350, 0.500]" in page  # each share beside its interval
    assert "0.31" in page  # the median confidence
    assert 'href="#attribution"' in page
    clear = render_report(explanation, {}, attribution=_details(True))
    assert "not distinguishable" not in clear
    assert "The top interaction (syn) is distinguishable from the second (red)" in clear


def test_report_of_attribution_files_without_intervals_still_renders():
    details = _details(True)
    for method in details["methods"].values():
        for key in ("intervals", "second", "distinguishable", "median_confidence"):
            del method[key]
    page = render_report(hand_explanation(), {}, attribution=details)
    assert "0.420" in page and "distinguishable from" not in page


ROWS = [
    {
        "present": ["a", "b"],
        "absent": [],
        "metrics": {"accuracy": 0.8, "auroc": 0.9},
        "attribution": {"method": "rule", "uni_a": 0.5, "uni_b": 0.1, "syn": 0.2, "red": 0.2},
    },
    {
        "present": ["b"],
        "absent": ["a"],
        "metrics": {"accuracy": 0.6, "auroc": None},
        "attribution": {"method": "rule", "uni_a": 0.3, "uni_b": 0.3, "syn": 0.2, "red": 0.2},
    },
]


def test_report_shows_robustness_only_when_the_run_has_it():
    explanation = hand_explanation()
    page = render_report(explanation, {}, robustness=ROWS)
    assert 'id="robustness"' in page and 'href="#robustness"' in page
    section = page[page.index('id="robustness"') : page.index('id="groups"')]
    assert "0.300 (absent)" in section  # uni_a without modality a
    assert "follow the noise standing in for that modality" in section
    assert page.index('id="sensitivity"') < page.index('id="robustness"')
    assert_self_contained(page)
    assert 'id="robustness"' not in render_report(explanation, {})


def test_written_report_embeds_the_robustness_figure(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "robustness.json").write_text(json.dumps(ROWS))
    one_sample = analyse(hand_outputs(), samples=[0])
    explanation = write_explanation(
        one_sample, run / "interpretation", robustness=run / "robustness.json"
    )
    assert explanation.figures["robustness"].name == "robustness.png"
    page = (run / "interpretation" / "report.html").read_text(encoding="utf-8")
    section = page[page.index('id="robustness"') : page.index('id="groups"')]
    assert "data:image/png;base64," in section
    (run / "robustness.json").unlink()
    again = write_explanation(
        one_sample, run / "interpretation", robustness=run / "robustness.json"
    )
    assert "robustness" not in again.figures
    assert not (run / "interpretation" / "robustness.png").exists()


def test_read_robustness_skips_what_is_not_rows(tmp_path):
    path = tmp_path / "robustness.json"
    assert read_robustness(None) is None and read_robustness(path) is None
    path.write_text("{not json")
    assert read_robustness(path) is None
    path.write_text(json.dumps({"present": ["a"]}))
    assert read_robustness(path) is None
    path.write_text(json.dumps(ROWS))
    assert read_robustness(path) == ROWS
