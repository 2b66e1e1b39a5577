"""Width rules applied step after step (infoplane.widths): the authors' label-alignment rule
against a naive float64 re-implementation of their code (``kernel_mat``/``kernel_loss`` in
``python/network.py`` of ``Wickstrom/InformationTheoryExperiment``), the per-iteration moving
average, the non-updating look-up of probe sets, and exact resumes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import infoplane
from infoplane import widths
from infoplane.errors import InvalidParameterError
from tests.helpers.authors import their_distances, their_sigma_star

pytestmark = pytest.mark.usefixtures("single_thread")

SQRT2 = math.sqrt(2.0)


def _batch(t, n=24, dim=5, classes=3, seed=0):
    """A labelled batch whose widths drift with ``t`` and whose alignment peaks inside the grid."""
    g = torch.Generator().manual_seed(seed + t)
    y = torch.randint(0, classes, (n,), generator=g)
    x = torch.randn(n, dim, generator=g, dtype=torch.float64) * (1.0 + 0.2 * t)
    return x + 2.0 * torch.nn.functional.one_hot(y, dim).double(), y


# ----------------------------------------------------------------------------- their formula
def _their_run(batches, steps):
    """The authors' moving average over the measured iterations ``steps`` (their sigmas)."""
    out, sigma = [], None
    for (x, y), t in zip(batches, steps, strict=True):
        best, _, _ = their_sigma_star(x.numpy(), y.numpy(), 100 if t > 20 else 300)
        sigma = best if sigma is None else 0.9 * sigma + 0.1 * best
        out.append(sigma)
    return out


def _ours(rule, x, y, **kw):
    d2, ky = infoplane.squared_distances(x), infoplane.label_gram(y)
    return rule.update(d2, x[0].numel(), ky, **kw)


# ----------------------------------------------------------------------------- the authors' grid
@pytest.mark.parametrize("num", [1, 7, 100, 300])
def test_authors_grid_is_their_linspace_over_sqrt2(num):
    x, _ = _batch(0)
    grid = widths.authors_grid(infoplane.squared_distances(x), num)
    assert grid.shape == (num,) and grid.dtype == torch.float64
    d = their_distances(x.numpy())
    expected = np.linspace(0.3, 10.0 * d.mean(), num) / SQRT2  # mean over all N^2, diagonal too
    np.testing.assert_allclose(grid.numpy(), expected, rtol=1e-13)
    assert float(grid[0]) == pytest.approx(0.3 / SQRT2, rel=1e-15)  # 0.3 is absolute


def test_authors_grid_of_tiny_distances_runs_upwards_with_their_values():
    x = _batch(0)[0] * 1e-4  # 10 * mean(d) < 0.3: their list runs downwards
    grid = widths.authors_grid(infoplane.squared_distances(x), 50)
    d = their_distances(x.numpy())
    assert 10.0 * d.mean() < 0.3
    theirs = np.linspace(0.3, 10.0 * d.mean(), 50) / SQRT2
    np.testing.assert_allclose(grid.numpy(), theirs[::-1], rtol=1e-13)
    assert bool((grid.diff() > 0).all())


def test_authors_grid_of_identical_samples_is_their_lower_end():
    grid = widths.authors_grid(torch.zeros(6, 6, dtype=torch.float64), 5)
    np.testing.assert_array_equal(grid.numpy(), np.full(5, 0.3 / SQRT2))


@pytest.mark.parametrize("num", [100, 300])
def test_authors_sigma_star_is_their_first_maximum(num):
    for t in range(4):
        x, y = _batch(t, seed=10)
        best, _, scores = their_sigma_star(x.numpy(), y.numpy(), num)
        assert 0 < int(np.argmax(scores)) < num - 1  # an interior maximum
        d2, ky = infoplane.squared_distances(x), infoplane.label_gram(y)
        got = widths.best_width(d2, ky, widths.authors_grid(d2, num))
        assert float(got) == pytest.approx(best / SQRT2, rel=1e-12)
        lookup = widths.AuthorsAlignment(num_candidates=num).lookup(d2, 5, ky)
        assert float(lookup) == float(got)


def test_authors_rule_reproduces_their_moving_average_over_the_warmup_boundary():
    """Iterations 0..20 search 300 candidates, 21 on 100; sigma_0 = sigma*_0, beta = 0.9."""
    batches = [_batch(t, seed=20) for t in range(25)]
    theirs = _their_run(batches, range(25))
    rule = widths.make_width_rule("authors")
    assert type(rule) is widths.AuthorsAlignment
    for t, (x, y) in enumerate(batches):
        got = _ours(rule, x, y, step=t)
        assert float(got) == pytest.approx(theirs[t] / SQRT2, rel=1e-12), t
    assert rule.steps == 25 and rule.last_step == 24
    assert rule.describe() == {
        "rule": "authors",
        "num_candidates": 100,
        "warmup_candidates": 300,
        "warmup_steps": 21,
        "beta": 0.9,
    }


def test_authors_warmup_is_21_iterations_and_the_variant_keeps_20():
    x, y = _batch(3, seed=30)
    d2, ky = infoplane.squared_distances(x), infoplane.label_gram(y)
    authors, variant = widths.AuthorsAlignment(), widths.LabelAlignment()
    authors.update(d2, 5, ky, step=0)  # the authors' current_iteration starts at 0
    variant.update(d2, 5, ky, step=0)
    assert authors._num(20) == 300 and authors._num(21) == 100
    assert variant._num(19) == 300 and variant._num(20) == 100
    fine = their_sigma_star(x.numpy(), y.numpy(), 300)[0] / SQRT2
    coarse = their_sigma_star(x.numpy(), y.numpy(), 100)[0] / SQRT2
    assert fine != pytest.approx(coarse, rel=1e-9)  # the grids pick different candidates
    first = widths.AuthorsAlignment()
    first.update(d2, 5, ky, step=0)
    assert float(first.best_candidate(d2, ky, step=20)) == pytest.approx(fine)
    assert float(first.best_candidate(d2, ky, step=21)) == pytest.approx(coarse)


def test_the_warmup_counts_iterations_from_the_first_update():
    """Numbered from 1 (infoplane run's optimizer steps) the warm-up lasts the same 21
    iterations as numbered from 0 (the authors' current_iteration)."""
    x, y = _batch(3, seed=31)
    d2, ky = infoplane.squared_distances(x), infoplane.label_gram(y)
    from_one = widths.AuthorsAlignment()
    from_one.update(d2, 5, ky, step=1)
    assert from_one._num(21) == 300 and from_one._num(22) == 100
    restored = widths.AuthorsAlignment()
    restored.load_state_dict(from_one.state_dict())
    assert restored.first_step == 1 and restored._num(21) == 300


# ----------------------------------------------------------------------------- iterations
@pytest.mark.parametrize("cls", [widths.AuthorsAlignment, widths.LabelAlignment])
def test_every_10_over_100_iterations_equals_the_closed_form(cls):
    """sigma <- beta^k sigma + (1 - beta^k) sigma* for k = 10, i.e. the per-iteration average
    with each measured target held for the 10 iterations before it."""
    steps = list(range(0, 100, 10))
    batches = [_batch(t, seed=40) for t in range(len(steps))]
    rule = cls()
    targets, got = [], []
    for t, (x, y) in zip(steps, batches, strict=True):
        d2, ky = infoplane.squared_distances(x), infoplane.label_gram(y)
        targets.append(float(rule.best_candidate(d2, ky, step=t)))  # iteration t's grid
        got.append(float(rule.update(d2, 5, ky, step=t)))
    beta = 0.9
    # closed form: sigma_j = beta^(10 j) c_0 + sum_{i=1..j} (1 - beta^10) beta^(10 (j - i)) c_i
    for j in range(len(steps)):
        closed = beta ** (10 * j) * targets[0] + sum(
            (1 - beta**10) * beta ** (10 * (j - i)) * targets[i] for i in range(1, j + 1)
        )
        assert got[j] == pytest.approx(closed, rel=1e-12)
    # the same, iteration by iteration: each target held from the previous measurement on
    sigma = targets[0]
    for it in range(1, 91):
        sigma = beta * sigma + (1 - beta) * targets[-(-it // 10)]
    assert got[-1] == pytest.approx(sigma, rel=1e-12)


def test_every_1_equals_the_per_call_average_bit_for_bit():
    batches = [_batch(t, seed=50) for t in range(6)]
    with_steps, per_call = (
        widths.LabelAlignment(warmup_steps=2),
        widths.LabelAlignment(warmup_steps=2),
    )
    previous = None
    for t, (x, y) in enumerate(batches):
        d2, ky = infoplane.squared_distances(x), infoplane.label_gram(y)
        best = per_call.best_candidate(d2, ky)
        a = with_steps.update(d2, 5, ky, step=t)
        b = per_call(d2, 5, ky)  # no step: the iteration after the previous update
        assert torch.equal(a, b)
        expected = best if previous is None else 0.9 * previous + (1.0 - 0.9) * best
        assert torch.equal(a, expected)
        previous = a


def test_repeated_and_backward_steps_count_as_one_iteration():
    batches = [_batch(t, seed=60) for t in range(4)]
    rule = widths.AuthorsAlignment()
    targets = []
    for t, ((x, y), step) in enumerate(zip(batches, [30, 30, 12, 13], strict=True)):
        d2, ky = infoplane.squared_distances(x), infoplane.label_gram(y)
        # the grid of this step (the warm-up's: every step is within 21 of the first, 30)
        targets.append(float(rule.best_candidate(d2, ky, step=step)))
        if t == 2:
            with pytest.warns(UserWarning, match="step 12 comes after step 30"):
                rule.update(d2, 5, ky, step=step)
        else:
            rule.update(d2, 5, ky, step=step)
        if t == 1:  # a repeated step: one more update with k = 1, no warning
            assert float(rule.sigma) == pytest.approx(0.9 * targets[0] + 0.1 * targets[1])
    assert rule.steps == 4 and rule.last_step == 13  # counts on from the backward step


def test_lookup_changes_no_state_and_ignores_the_warmup():
    rule = widths.AuthorsAlignment()
    x, y = _batch(0, seed=70)
    d2, ky = infoplane.squared_distances(x), infoplane.label_gram(y)
    state = json.dumps(rule.state_dict())
    steady = their_sigma_star(x.numpy(), y.numpy(), 100)[0] / SQRT2
    assert float(rule.lookup(d2, 5, ky)) == pytest.approx(steady, rel=1e-12)
    assert json.dumps(rule.state_dict()) == state
    rule.update(d2, 5, ky, step=0)
    state = json.dumps(rule.state_dict())
    assert float(rule.lookup(d2, 5, ky)) == pytest.approx(steady, rel=1e-12)  # no average
    assert json.dumps(rule.state_dict()) == state
    for stateless in (widths.Median(), widths.KNN(3), widths.Scott(), widths.Fixed(2.0)):
        assert torch.equal(stateless.lookup(d2, 5, ky), stateless.update(d2, 5, ky, step=9))


@pytest.mark.parametrize("every", [1, 10])
def test_resume_continues_bit_for_bit(every):
    batches = [_batch(t, seed=80) for t in range(8)]
    steps = [every * t for t in range(8)]
    original = widths.AuthorsAlignment()
    for (x, y), s in zip(batches[:3], steps[:3], strict=True):
        _ours(original, x, y, step=s)
    state = json.loads(json.dumps(original.state_dict()))
    assert state == {
        "steps": 3,
        "first_step": 0,
        "last_step": steps[2],
        "sigma": float(original.sigma),
    }
    resumed = widths.AuthorsAlignment()
    resumed.load_state_dict(state)
    for (x, y), s in zip(batches[3:], steps[3:], strict=True):
        assert torch.equal(_ours(resumed, x, y, step=s), _ours(original, x, y, step=s))
    assert resumed.state_dict() == original.state_dict()


# ----------------------------------------------------------------------------- the interface
def test_names_and_the_public_namespace():
    assert set(widths.WIDTH_RULES) == {
        "alignment",
        "authors",
        "median",
        "knn",
        "silverman",
        "scott",
    }
    for name in ("median_distance", "authors_grid", "best_width", "candidate_grid"):
        assert getattr(widths, name) is getattr(infoplane.widths._functions, name)
    for name in ("LabelAlignment", "make_width_rule", "batch_widths"):
        assert getattr(widths, name) is getattr(infoplane.widths._rules, name)
    assert not hasattr(infoplane.functional, "bandwidth")


def test_a_rule_written_against_call_works_through_update_and_lookup():
    class Half(widths.WidthRule):
        def __call__(self, sq_dists, dim, y_gram=None):
            return sq_dists.max().sqrt() / 2

    d2 = infoplane.squared_distances(_batch(0)[0])
    assert torch.equal(Half().update(d2, 5, step=3), d2.max().sqrt() / 2)
    assert torch.equal(Half().lookup(d2, 5), d2.max().sqrt() / 2)
    with pytest.raises(NotImplementedError):
        widths.WidthRule().update(d2, 5)


@pytest.mark.parametrize("step", [-1, 1.5, True, "3"])
def test_bad_steps_raise(step):
    x, y = _batch(0)
    for rule in (widths.AuthorsAlignment(), widths.Median()):
        with pytest.raises(InvalidParameterError, match="step"):
            _ours(rule, x, y, step=step)


def test_batch_widths_equals_one_update_per_rule_step_after_step():
    """The tracker's batched widths: the label-alignment rules (in different warm-up states,
    so grids of 300 and 100 candidates in one batch) searched together, other rules one by
    one, give bit for bit the widths and states of one ``update`` per rule, and ``lookup``
    the same as the rules' own lookups."""

    def rules():
        late = widths.LabelAlignment(warmup_steps=2)
        return [widths.AuthorsAlignment(), widths.Median(), late, widths.Fixed(1.5), widths.KNN(3)]

    together, alone = rules(), rules()
    late_start = 3  # the third rule starts later: its warm-up grid overlaps the others' steady one
    for step in range(8):
        batch = [_batch(step, seed=200 + m)[0] for m in range(len(together))]
        _, y = _batch(step, seed=200)
        ky = infoplane.label_gram(y)
        d2 = torch.stack([infoplane.squared_distances(x) for x in batch])
        active = [m for m in range(5) if m != 2 or step >= late_start]
        got = widths.batch_widths(
            [together[m] for m in active], d2[active], [5] * len(active), ky, step=step
        )
        want = [alone[m].update(d2[m], 5, ky, step=step) for m in active]
        assert torch.equal(got, torch.stack(want)), step
        looked = widths.batch_widths(together, d2, [5] * 5, ky, update=False)
        assert torch.equal(
            looked, torch.stack([r.lookup(d2[m], 5, ky) for m, r in enumerate(alone)])
        )
    assert [r.state_dict() for r in together] == [r.state_dict() for r in alone]


def test_batch_widths_moves_each_average_by_its_own_elapsed_iterations():
    """The batched moving average against its formula in Python floats, rule by rule: a fresh
    rule starts at sigma*; the others move by ``beta^k sigma + (1 - beta^k) sigma*``, with
    their own beta and the k iterations since their own last update (here every layer is
    searched, so the batch reads the distances without a copy)."""
    rules = [
        widths.AuthorsAlignment(),
        widths.LabelAlignment(beta=0.5),
        widths.AuthorsAlignment(beta=0.8),
    ]
    _, y = _batch(0, seed=300)
    ky = infoplane.label_gram(y)
    d2 = torch.stack([infoplane.squared_distances(_batch(0, seed=300 + m)[0]) for m in range(3)])
    rules[1].update(d2[1], 5, ky, step=4)
    rules[2].update(d2[2], 5, ky, step=6)
    before = [None, float(rules[1].sigma), float(rules[2].sigma)]
    best = [float(r.best_candidate(d2[m], ky, step=7)) for m, r in enumerate(rules)]
    got = widths.batch_widths(rules, d2, [5] * 3, ky, step=7).tolist()
    assert got == [
        best[0],
        0.5**3 * before[1] + (1.0 - 0.5**3) * best[1],
        0.8 * before[2] + (1.0 - 0.8) * best[2],
    ]
    assert [float(r.sigma) for r in rules] == got
    assert [(r.steps, r.last_step) for r in rules] == [(1, 7), (2, 7), (2, 7)]


def test_a_backward_step_warns_at_the_callers_line():
    """The backward-step warning names the line that called ``update`` or ``batch_widths``."""
    x, y = _batch(0)
    d2, ky = infoplane.squared_distances(x), infoplane.label_gram(y)
    rule, batched = widths.AuthorsAlignment(), widths.AuthorsAlignment()
    rule.update(d2, 5, ky, step=30)
    widths.batch_widths([batched], d2[None], [5], ky, step=30)
    with pytest.warns(UserWarning, match="comes after step 30") as caught:
        rule.update(d2, 5, ky, step=12)
        widths.batch_widths([batched], d2[None], [5], ky, step=12)
    assert [w.filename for w in caught] == [__file__, __file__]


def test_batch_widths_needs_labels_for_the_alignment_rules():
    d2 = infoplane.squared_distances(_batch(0)[0])[None]
    with pytest.raises(
        infoplane.errors.InvalidInputError, match="batch_widths: expected a label Gram"
    ):
        widths.batch_widths([widths.AuthorsAlignment()], d2, [5], None, step=0)
    assert torch.equal(
        widths.batch_widths([widths.Median()], d2, [5], None, step=0),
        widths.Median().update(d2[0], 5)[None],
    )
