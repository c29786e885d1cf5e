"""ADNI reader on a fake Flex-MoE folder: subject selection, latest scans, train-only scaling,
leak columns, missing modalities, malformed files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

h5py = pytest.importorskip("h5py")

from fakes import ADNI_ATLAS, adni_ptid, write_adni, write_h5ad  # noqa: E402

from i2moe.data import DataError  # noqa: E402
from i2moe.data.paper import read_adni  # noqa: E402
from i2moe.data.paper.adni import read_h5ad_with_h5py  # noqa: E402

N = 30


def _complete(i: int) -> bool:
    return i % 7 != 5 and i % 6 != 4 and i % 8 != 6 and i % 9 != 7


def _split_of(i: int) -> str:
    return {3: "val", 4: "test"}.get(i % 5, "train")


def _ids(split: str, keep=_complete) -> list[str]:
    return [adni_ptid(i) for i in range(N) if _split_of(i) == split and keep(i)]


@pytest.fixture(scope="module")
def adni_vector(tmp_path_factory):
    return write_adni(tmp_path_factory.mktemp("adni"), n_subjects=N, atlas_shape=None)


def test_drop_keeps_complete_subjects_in_split_order(adni_vector):
    bundle = read_adni(adni_vector)
    assert bundle.task == "classification" and bundle.num_outputs == 3
    assert bundle.class_names == ["CN", "MCI", "dementia"]
    assert [m.name for m in bundle.modalities] == ["image", "genomic", "clinical", "biospecimen"]
    for split in ("train", "val", "test"):
        dataset = bundle.split(split)
        assert dataset.sample_ids == _ids(split)
        assert dataset.observed.all()
    assert bundle.meta["skipped_subjects"]["test"]["not_in_labels"] == 1  # 999_S_9999
    item = bundle.train[1]
    subject = int(bundle.train.sample_ids[1].split("_")[-1]) - 1000
    assert item["target"].dtype == torch.long and int(item["target"]) == subject % 3


def test_leak_columns_are_dropped(adni_vector):
    bundle = read_adni(adni_vector)
    assert bundle.meta["dropped_leak_columns"] == ["PTCOGBEG", "PTADDX", "PTADBEG_YEAR"]
    assert dict((m.name, m.shape) for m in bundle.modalities)["clinical"] == (3,)


def test_latest_scan_per_subject_is_used(adni_vector):
    bundle = read_adni(adni_vector)
    mean, std = bundle.meta["image_mean"], bundle.meta["image_std"]
    assert bundle.modalities[0].kind == "vector"
    for index, subject in enumerate(bundle.val.sample_ids):
        raw = bundle.val[index]["inputs"]["image"] * std + mean
        i = int(subject.split("_")[-1]) - 1000
        assert torch.allclose(raw, torch.full_like(raw, i + 0.5), atol=1e-4)  # never -100


def test_statistics_come_from_training_subjects_only(adni_vector):
    bundle = read_adni(adni_vector)
    train_numbers = np.array([int(s.split("_")[-1]) - 1000 for s in bundle.train.sample_ids])
    assert bundle.meta["image_mean"] == pytest.approx(np.mean(train_numbers + 0.5))
    assert bundle.meta["image_std"] == pytest.approx(np.std(train_numbers + 0.5))

    clinical = pd.read_csv(adni_vector / "clinical/clinical_merged_mean.csv", index_col=0)
    train_rows = clinical.loc[bundle.train.sample_ids, ["AGE", "PTEDUCAT", "MMSE"]]
    subject = bundle.test.sample_ids[0]
    expected = (clinical.loc[subject, ["AGE", "PTEDUCAT", "MMSE"]] - train_rows.mean()) / (
        train_rows.std(ddof=0)
    )
    got = bundle.test[0]["inputs"]["clinical"].numpy()
    np.testing.assert_allclose(got, expected.to_numpy(), rtol=1e-5)
    all_rows = clinical.loc[[s for s in clinical.index if (clinical.loc[s] != -2).any()]]
    assert not np.allclose(got, ((clinical.loc[subject] - all_rows.mean()) / all_rows.std())[:3])

    train_genomic = torch.stack([bundle.train[i]["inputs"]["genomic"] for i in range(3)])
    assert train_genomic.min() >= -1 and train_genomic.max() <= 1
    assert torch.isfinite(train_genomic).all()  # the NaN call was filled with the mode


def test_tabular_scaling_none_keeps_file_values(adni_vector):
    bundle = read_adni(adni_vector, tabular_scaling="none")
    clinical = pd.read_csv(adni_vector / "clinical/clinical_merged_mean.csv", index_col=0)
    subject = bundle.val.sample_ids[0]
    np.testing.assert_allclose(
        bundle.val[0]["inputs"]["clinical"].numpy(),
        clinical.loc[subject, ["AGE", "PTEDUCAT", "MMSE"]].to_numpy(dtype=float),
        rtol=1e-6,
    )


def test_keep_marks_missing_modalities(adni_vector):
    bundle = read_adni(adni_vector, missing="keep")
    assert bundle.train.sample_ids == _ids("train", keep=lambda i: True)
    by_subject = {s: k for k, s in enumerate(bundle.train.sample_ids)}
    no_scan, no_clinical = by_subject[adni_ptid(5)], by_subject[adni_ptid(6)]
    no_genomic, no_bio = by_subject[adni_ptid(10)], by_subject[adni_ptid(7)]
    assert bundle.train[no_scan]["observed"].tolist() == [False, True, True, True]
    assert not bundle.train[no_scan]["inputs"]["image"].any()
    assert bundle.train[no_clinical]["observed"].tolist() == [True, True, False, True]
    assert not bundle.train[no_clinical]["inputs"]["clinical"].any()  # not -2
    assert bundle.train[no_genomic]["observed"].tolist() == [True, False, True, True]
    assert bundle.train[no_bio]["observed"].tolist() == [True, True, True, False]
    assert bundle.train[by_subject[adni_ptid(0)]]["observed"].all()


def test_volume_scatters_grey_matter_into_the_atlas_grid(tmp_path):
    nibabel = pytest.importorskip("nibabel")
    folder = write_adni(tmp_path, n_subjects=N, atlas_shape=(9, 11, 9))
    volume = read_adni(folder)
    vector = read_adni(folder, image_form="vector")
    assert volume.modalities[0].shape == (1, 9, 11, 9) and volume.modalities[0].kind == "volume"
    atlas = np.asarray(nibabel.load(str(folder / "image" / ADNI_ATLAS)).dataobj)
    grey = torch.from_numpy(atlas == 150)
    item = volume.val[0]["inputs"]["image"]
    assert item.shape == (1, 9, 11, 9)
    assert not item[0][~grey].any()
    assert torch.equal(item[0][grey], vector.val[0]["inputs"]["image"])


def test_volume_needs_the_atlas(adni_vector):
    with pytest.raises(DataError, match=r"BLSA_SPGR\+MPRAGE.*: missing"):
        read_adni(adni_vector, image_form="volume")


def test_atlas_must_match_the_voxel_columns(tmp_path):
    nibabel = pytest.importorskip("nibabel")
    folder = write_adni(tmp_path, n_subjects=12, atlas_shape=(9, 11, 9))
    atlas = np.zeros((4, 4, 4), dtype=np.int16)
    atlas[0, 0, :3] = 150
    nibabel.save(nibabel.Nifti1Image(atlas, np.eye(4)), folder / "image" / ADNI_ATLAS)
    with pytest.raises(DataError, match=r"marks 3 voxels with label 150 but image/ADNI_G\.npy"):
        read_adni(folder)


def test_h5py_reader_handles_sparse_x_and_nullable_index(tmp_path):
    dense = np.array([[0.0, 2.0, 0.0], [1.0, 0.0, 2.0]])
    path = tmp_path / "sparse.h5ad"
    write_h5ad(path, ["a", "b"], dense)
    with h5py.File(path, "a") as handle:
        del handle["X"]
        group = handle.create_group("X")
        group.attrs.update({"encoding-type": "csr_matrix", "shape": np.array([2, 3])})
        group["data"], group["indices"] = np.array([2.0, 1.0, 2.0]), np.array([1, 0, 2])
        group["indptr"] = np.array([0, 1, 3])
        # Newer AnnData writes pandas string indexes as a nullable string array.
        del handle["obs/_index"]
        index = handle["obs"].create_group("_index")
        index.attrs["encoding-type"] = "nullable-string-array"
        index["values"] = np.array([b"a", b"b"])
        index["mask"] = np.array([False, False])
    ptids, matrix = read_h5ad_with_h5py(path)
    assert ptids == ["a", "b"]
    np.testing.assert_array_equal(matrix, dense)


def test_anndata_and_h5py_agree(adni_vector):
    anndata = pytest.importorskip("anndata")
    adata = anndata.read_h5ad(adni_vector / "genomic/genomic_merged.h5ad")
    ptids, matrix = read_h5ad_with_h5py(adni_vector / "genomic/genomic_merged.h5ad")
    assert list(adata.obs_names) == ptids
    np.testing.assert_array_equal(np.asarray(adata.X), matrix)


def test_missing_files_listed_in_one_error(tmp_path):
    folder = write_adni(tmp_path, n_subjects=12, atlas_shape=None)
    (folder / "genomic/genomic_merged.h5ad").unlink()
    (folder / "PTID_splits.json").unlink()
    with pytest.raises(DataError) as error:
        read_adni(folder)
    message = str(error.value)
    assert "2 problems" in message
    assert "genomic/genomic_merged.h5ad: missing; expected an AnnData file" in message
    assert "PTID_splits.json: missing" in message


def test_malformed_contents_listed_together(tmp_path):
    folder = write_adni(tmp_path, n_subjects=12, atlas_shape=None)
    labels = pd.read_csv(folder / "label.csv")
    labels.loc[2, "DIAGNOSIS"] = 4
    labels.to_csv(folder / "label.csv", index=False)
    splits = json.loads((folder / "PTID_splits.json").read_text())
    del splits["testing"]
    (folder / "PTID_splits.json").write_text(json.dumps(splits))
    lines = (folder / "image/ADNI_subj.txt").read_text().splitlines()
    (folder / "image/ADNI_subj.txt").write_text("\n".join(lines[:-1]))
    with h5py.File(folder / "genomic/genomic_merged.h5ad", "a") as handle:
        del handle["X"]
    bio = pd.read_csv(folder / "biospecimen/biospecimen_merged_mean.csv", index_col=0)
    bio["SITE"] = "x"
    bio.to_csv(folder / "biospecimen/biospecimen_merged_mean.csv")
    with pytest.raises(DataError) as error:
        read_adni(folder)
    message = str(error.value)
    assert "label.csv: column DIAGNOSIS has 1 value(s) outside 1..3" in message
    assert "PTID_splits.json: key 'testing' is missing" in message
    assert "image/ADNI_subj.txt: has" in message and "expected one line per row" in message
    assert "genomic/genomic_merged.h5ad: field 'X' is missing" in message
    assert "biospecimen/biospecimen_merged_mean.csv: column(s) SITE are not numeric" in message


def test_missing_label_column_and_bad_dates(tmp_path):
    folder = write_adni(tmp_path, n_subjects=12, atlas_shape=None)
    pd.read_csv(folder / "label.csv").drop(columns="DIAGNOSIS").to_csv(
        folder / "label.csv", index=False
    )
    lines = (folder / "image/ADNI_subj.txt").read_text().splitlines()
    lines[0] = lines[0].rsplit("_", 1)[0] + "_someday"
    (folder / "image/ADNI_subj.txt").write_text("\n".join(lines))
    with pytest.raises(DataError) as error:
        read_adni(folder)
    assert "label.csv: column(s) DIAGNOSIS missing" in str(error.value)
    assert "ADNI_subj.txt: line(s) 1 end in something that is not a date" in str(error.value)


def test_invalid_option(adni_vector):
    with pytest.raises(DataError, match="missing='all'"):
        read_adni(adni_vector, missing="all")
