"""The estimators: scikit-learn's contract, inputs as dicts, tables and arrays, run folders."""

import warnings

import numpy as np
import pandas as pd
import pytest

from i2moe.cli import main
from i2moe.estimator import I2MoEClassifier, I2MoERegressor, NotFittedError

FAST = {"epochs": 2, "dim": 8, "batch_size": 32}


def _synergy(num_samples: int = 160, seed: int = 0):
    """Two modalities; the label needs both (sign of a0 * b0), plus a redundant cue."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(num_samples, 4)).astype(np.float32)
    b = rng.normal(size=(num_samples, 3)).astype(np.float32)
    y = np.where(a[:, 0] + b[:, 0] > 0, "yes", "no")
    return {"a": a, "b": b}, y


@pytest.fixture(scope="module")
def fitted():
    X, y = _synergy()
    return I2MoEClassifier(**FAST).fit(X, y), X, y


def test_fit_predict_and_the_fitted_attributes(fitted):
    model, X, y = fitted
    assert list(model.classes_) == ["no", "yes"]
    probabilities = model.predict_proba(X)
    assert probabilities.shape == (len(y), 2)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, rtol=1e-5)
    assert set(model.predict(X)) <= {"no", "yes"}
    assert 0.0 <= model.score(X, y) <= 1.0
    shares = model.attribution_["shares"]
    assert set(shares) == {"uni_a", "uni_b", "syn", "red"}
    assert sum(shares.values()) == pytest.approx(1.0)
    assert model.modality_names_ == ["a", "b"]


def test_explain_gives_attributions_and_the_paper_s_weights(fitted):
    model, X, _ = fitted
    frame = model.explain({k: v[:5] for k, v in X.items()})
    expected = {f"attr_{n}" for n in ("uni_a", "uni_b", "syn", "red")}
    assert expected | {f"weight_{n}" for n in ("uni_a", "uni_b", "syn", "red")} == set(frame)
    np.testing.assert_allclose(frame[sorted(expected)].sum(axis=1), 1.0, rtol=1e-5)
    assert len(frame) == 5


def test_unfitted_use_raises_not_fitted_error():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        I2MoEClassifier().predict({"a": np.zeros((2, 3)), "b": np.zeros((2, 2))})


def test_get_params_set_params_and_clone():
    from sklearn.base import clone

    model = I2MoEClassifier(fusion="lf", epochs=3, interaction_weight=0.1)
    params = model.get_params()
    assert params["fusion"] == "lf" and params["epochs"] == 3
    assert params["interaction_weight"] == 0.1
    copy = clone(model)
    assert copy.get_params() == params and copy is not model
    assert model.set_params(epochs=7).epochs == 7
    with pytest.raises(ValueError, match="Invalid parameter"):
        model.set_params(epoch=7)


def test_save_then_load_predicts_bit_for_bit(fitted, tmp_path):
    model, X, _ = fitted
    path = model.save(tmp_path / "saved")
    loaded = I2MoEClassifier.load(path)
    assert np.array_equal(model.predict_proba(X), loaded.predict_proba(X))
    assert list(loaded.classes_) == ["no", "yes"]
    assert loaded.attribution_ == model.attribution_
    assert loaded.get_params() == model.get_params()
    explained = loaded.explain({k: v[:4] for k, v in X.items()})
    pd.testing.assert_frame_equal(explained, model.explain({k: v[:4] for k, v in X.items()}))


def test_saving_into_a_non_empty_folder_is_refused(fitted, tmp_path):
    model, _, _ = fitted
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(Exception, match="exists and is not an empty folder"):
        model.save(tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "mine"


@pytest.mark.slow
def test_the_command_line_reads_a_saved_estimator_and_vice_versa(fitted, tmp_path, capsys):
    model, X, y = fitted
    saved = model.save(tmp_path / "saved")
    data = tmp_path / "new.npz"
    np.savez(data, a=X["a"], b=X["b"], y=(y == "yes").astype(np.int64))
    assert (
        main(
            [
                "--quiet",
                "predict",
                "--run",
                str(saved),
                "--data",
                str(data),
                "--output",
                str(tmp_path / "p.csv"),
            ]
        )
        == 0
    )
    predicted = pd.read_csv(tmp_path / "p.csv")
    assert {"attr_syn", "weight_syn"} <= set(predicted.columns)  # probes on reference.npz
    mine = model.predict_proba(X)
    np.testing.assert_allclose(np.sort(predicted["prob_yes"]), np.sort(mine[:, 1]), atol=1e-5)
    # ... and a folder written by `i2moe fit` loads as an estimator.
    run = tmp_path / "run"
    flags = ["--epochs", "1", "--dim", "8", "--batch-size", "32"]
    assert main(["--quiet", "fit", "--data", str(data), "--output", str(run), *flags]) == 0
    loaded = I2MoEClassifier.load(run)
    assert loaded.epochs == 1 and loaded.dim == 8
    assert loaded.predict_proba(X).shape == (len(y), 2)


def test_a_dataframe_with_a_column_mapping():
    X, y = _synergy()
    frame = pd.DataFrame(np.hstack([X["a"], X["b"]]), columns=[f"c{i}" for i in range(7)])
    mapping = {"a": ["c0", "c1", "c2", "c3"], "b": ["c4", "c5", "c6"]}
    model = I2MoEClassifier(modalities=mapping, **FAST).fit(frame, y)
    assert model.n_features_in_ == 7 and model.modality_names_ == ["a", "b"]
    explained = model.explain(frame.iloc[10:13])
    assert list(explained.index) == [10, 11, 12]
    with pytest.raises(Exception, match=r"modalities\['a'\]: columns \['zz'\] are not in X"):
        I2MoEClassifier(modalities={"a": ["zz"], "b": ["c4"]}, **FAST).fit(frame, y)


def test_a_missing_modality_row_is_nan_or_observed_false():
    X, y = _synergy()
    X["b"][:10] = np.nan
    model = I2MoEClassifier(**FAST).fit(X, y)
    assert np.isfinite(model.predict_proba(X)).all()
    observed = np.ones((len(y), 2), dtype=bool)
    observed[:10, 1] = False
    clean = {"a": X["a"], "b": np.nan_to_num(X["b"])}
    np.testing.assert_array_equal(
        model.predict_proba(X)[:10], model.predict_proba(clean, observed=observed)[:10]
    )
    X["a"][20, 0] = np.nan
    with pytest.raises(Exception, match=r"X\['a'\]: 1 rows \(first: 20\) hold NaN"):
        model.predict_proba(X)


def test_one_modality_is_refused_unless_vanilla():
    X, y = _synergy()
    with pytest.raises(Exception, match="one modality .*vanilla=True"):
        I2MoEClassifier(**FAST).fit({"a": X["a"]}, y)
    model = I2MoEClassifier(vanilla=True, **FAST).fit({"a": X["a"]}, y)
    assert model.attribution_ is None
    with pytest.raises(Exception, match="no experts to explain"):
        model.explain({"a": X["a"]})


def test_regression_and_multilabel():
    X, _ = _synergy()
    target = X["a"][:, 0] * 2.0 + X["b"][:, 1]
    regressor = I2MoERegressor(**FAST).fit(X, target)
    assert regressor.predict(X).shape == (len(target),)
    assert np.isfinite(regressor.score(X, target))
    labels = np.stack([X["a"][:, 0] > 0, X["b"][:, 0] > 0, X["a"][:, 1] > 0], 1).astype(int)
    multilabel = I2MoEClassifier(**FAST).fit(X, labels)
    assert multilabel.predict(X).shape == labels.shape
    assert set(np.unique(multilabel.predict(X))) <= {0, 1}


@pytest.mark.slow
def test_cross_val_score_on_a_small_generated_dataset():
    from sklearn.model_selection import cross_val_score

    X, y = _synergy(num_samples=120)
    frame = pd.DataFrame(np.hstack([X["a"], X["b"]]))
    model = I2MoEClassifier(modalities={"a": [0, 1, 2, 3], "b": [4, 5, 6]}, **FAST)
    scores = cross_val_score(model, frame, y, cv=3)
    assert scores.shape == (3,) and np.all((0 <= scores) & (scores <= 1))


@pytest.mark.slow
@pytest.mark.parametrize("estimator", [I2MoEClassifier, I2MoERegressor])
def test_scikit_learn_s_estimator_checks(estimator):
    """Every check applies to a 2-D array split into two modalities (``modalities=2``); the
    checks built on dict inputs do not exist in scikit-learn. Skipped: ``check_array_api_input``
    (only with SCIPY_ARRAY_API set)."""
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(
            estimator(modalities=2, epochs=1, dim=8, batch_size=32), on_fail=None
        )
    failed = [
        (r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"
    ]
    assert not failed
    assert sum(r["status"] == "passed" for r in results) >= 40


def test_without_scikit_learn_the_contract_still_holds():
    import subprocess
    import sys

    code = """
import sys
sys.modules["sklearn"] = None  # as if scikit-learn were not installed
import numpy as np
from i2moe.estimator import I2MoEClassifier, NotFittedError
model = I2MoEClassifier(epochs=3)
assert model.get_params()["epochs"] == 3 and model.set_params(dim=8).dim == 8
try:
    model.set_params(nope=1)
except ValueError as error:
    assert "invalid parameter 'nope'" in str(error)
try:
    model.predict({"a": np.zeros((2, 2)), "b": np.zeros((2, 2))})
except NotFittedError:
    print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
