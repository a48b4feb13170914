"""Contact sheets, grids, tensor-to-image conversion and dataset statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hfr.data.stats import dataset_stats, yaw_bin
from hfr.errors import ArgumentError
from hfr.viz import contact_sheet, image_grid, tensor_to_images


def test_image_grid_places_cells():
    a = np.zeros((4, 4), np.uint8)
    b = np.full((4, 4, 3), 200, np.uint8)
    grid = image_grid([a, None, b], ncol=2, pad=1, background=255)
    assert grid.shape == (2 * 5 + 1, 2 * 5 + 1, 3)
    assert (grid[1:5, 1:5] == 0).all()  # a, top-left
    assert (grid[1:5, 6:10] == 255).all()  # None stays blank
    assert (grid[6:10, 1:5] == 200).all()  # b, second row


def test_tensor_to_images_maps_the_given_range_and_never_guesses():
    unit = torch.tensor([0.0, 0.25, 1.0, 1.5]).view(1, 1, 2, 2)
    (img,) = tensor_to_images(unit)
    assert img.dtype == np.uint8 and img.shape == (2, 2, 1)
    assert img[:, :, 0].tolist() == [[0, 64], [255, 255]]  # 1.5 is clipped
    signed = torch.tensor([-1.0, -0.5, 0.0, 1.0]).view(1, 1, 2, 2)
    assert tensor_to_images(signed, value_range=(-1.0, 1.0))[0][:, :, 0].tolist() == [[0, 64], [128, 255]]
    # a [-1, 1] tensor given as [0, 1] is clipped, not silently re-read as [-1, 1]
    assert tensor_to_images(signed)[0][:, :, 0].tolist() == [[0, 0], [0, 255]]
    rgb = tensor_to_images(torch.rand(3, 3, 4, 5))
    assert len(rgb) == 3 and rgb[0].shape == (4, 5, 3)
    with pytest.raises(ArgumentError, match="value_range"):
        tensor_to_images(unit, value_range=(1.0, 1.0))


def test_contact_sheet_rows_are_subjects_and_columns_values(tiny_dataset):
    sheet = contact_sheet(tiny_dataset, by="yaw", subjects=2)
    by_mod = contact_sheet(tiny_dataset, by="modality", subjects=3)
    assert sheet.ndim == 3 and sheet.shape[2] == 3
    # 3 yaw columns vs 2 modality columns; 2 vs 3 subject rows
    assert sheet.shape[1] > by_mod.shape[1]
    assert by_mod.shape[0] > sheet.shape[0]
    # the s0 / yaw 0 cell carries its grey level (60) somewhere in the sheet
    assert (sheet == 60).any() and (sheet == 30).any()


def test_contact_sheet_bad_axis(tiny_dataset):
    with pytest.raises(ArgumentError, match="--by 'colour'"):
        contact_sheet(tiny_dataset, by="colour")
    with pytest.raises(ArgumentError, match="no images"):
        contact_sheet(tiny_dataset, split="val")


def test_dataset_stats_counts(tiny_dataset):
    stats = dataset_stats(tiny_dataset)
    assert stats["images"] == 12 and stats["subjects"] == 3
    assert stats["modalities"] == {"nir": 3, "vis": 9}
    assert stats["subjects_per_split"] == {"test": 1, "train": 2}
    assert stats["modalities_per_split"] == {"test": {"nir": 1, "vis": 3}, "train": {"nir": 2, "vis": 6}}
    assert stats["subjects_per_split_modality"] == {"test": {"nir": 1, "vis": 1}, "train": {"nir": 2, "vis": 2}}
    assert stats["yaw_histogram"] == {"-30": 3, "0": 6, "30": 3}
    assert stats["images_per_subject"] == {"min": 4, "mean": 4.0, "max": 4}


def test_yaw_bin_centres():
    assert yaw_bin(7.4) == 0 and yaw_bin(7.6) == 15 and yaw_bin(-52) == -45 and yaw_bin(-53) == -60
