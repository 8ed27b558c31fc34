"""Basins: sizes, flatness, totals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from losstopo.topology import Basin, basins


def test_double_well_1d() -> None:
    x = np.linspace(-2, 2, 401)
    f = (x**2 - 1) ** 2 + 0.2 * x
    table = basins(f, min_persistence=0.1, axes=[x])
    assert len(table) == table.n_minima == 2
    deep, shallow = table.rows
    assert deep.value < shallow.value
    assert deep.coords[0] == pytest.approx(-1.02, abs=0.02)
    assert shallow.coords[0] == pytest.approx(0.97, abs=0.02)
    assert deep.saddle_value == np.inf and deep.persistence == np.inf
    saddle = f[np.argmax(np.where(np.abs(x) < 0.5, f, -np.inf))]
    assert shallow.saddle_value == pytest.approx(saddle)
    assert shallow.persistence == pytest.approx(saddle - shallow.value)
    assert table.total_persistence == pytest.approx(shallow.persistence)
    assert table.smad == pytest.approx(shallow.persistence)
    # basins partition the domain; volumes in axis units
    assert deep.size + shallow.size == x.size
    assert deep.volume + shallow.volume == pytest.approx(4.0)
    assert deep.fraction + shallow.fraction == pytest.approx(1.0)
    # the shallow basin is the part right of the saddle below the saddle value
    x_saddle = x[np.abs(x) < 0.5][np.argmax(f[np.abs(x) < 0.5])]
    below = (x > x_saddle) & (f < saddle)
    assert shallow.size == np.count_nonzero(below)
    assert 0 < shallow.flatness <= 1
    # f'' = 12 x^2 - 4 at the grid minimum
    assert shallow.hessian_eigenvalues[0] == pytest.approx(
        12 * shallow.coords[0] ** 2 - 4, rel=1e-3
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        deep.value = 0.0  # type: ignore[misc]
    assert isinstance(deep, Basin)


def test_flatness_delta() -> None:
    x = np.linspace(-1, 1, 201)
    X, Y = np.meshgrid(x, x, indexing="ij")
    f = np.maximum(X**2 + Y**2 - 0.25, 0.0)  # flat disk of radius 0.5 at the bottom
    table = basins(f, axes=(x, x), flatness_delta=1e-9)
    assert len(table) == 1
    assert table[0].flatness == pytest.approx(np.pi * 0.25 / 4, abs=0.01)
    sharp = basins(X**2 + Y**2, axes=(x, x), flatness_delta=1e-9)
    assert sharp[0].flatness < 1e-3
    assert table.flatness_delta == 1e-9
    default = basins(f, axes=(x, x))
    assert default.flatness_delta == pytest.approx(0.05 * np.ptp(f))


def test_basin_count_decreases_with_threshold() -> None:
    rng = np.random.default_rng(0)
    f = rng.random((40, 40))
    counts = [len(basins(f, t)) for t in (0.0, 0.1, 0.3, 0.6, 2.0)]
    assert counts == sorted(counts, reverse=True)
    assert counts[-1] == 1
    rel = basins(f, 0.3, relative=True)
    assert len(rel) == len(basins(f, 0.3 * np.ptp(f)))
    assert rel.column("persistence").shape == (len(rel),)
