"""Probability density distillation: the CaloFlow II loss terms."""

from __future__ import annotations

import numpy as np
import torch
from calobench_caloflow.distillation import chi2, distillation_loss
from calobench_caloflow.flow_ii import build_flow_ii, flow_permutations


def _pair(sizes, teacher_hidden=8, student_hidden=8, blocks=3, seed=0):
    torch.manual_seed(seed)
    teacher = build_flow_ii(sizes, blocks, teacher_hidden, 2, 4, 6.0, 0.0, "maf", rng=np.random.default_rng(seed))
    student = build_flow_ii(
        sizes, blocks, student_hidden, 2, 4, 6.0, 0.0, "iaf", permutations=flow_permutations(teacher)
    )
    return teacher.eval(), student


def test_chi2_sums_features_and_averages_the_rest():
    a, b = torch.zeros(4, 3, 5), torch.ones(4, 3, 5)
    assert chi2(a, b).item() == 3.0


def test_student_equal_to_teacher_has_zero_loss_and_kl():
    """With one feature an IAF with the teacher's weights is the teacher: every term vanishes."""
    teacher, student = _pair([1])
    student.load_state_dict(teacher.state_dict())
    x, noise = torch.randn(16, 1), torch.randn(16, 1)
    ctx_x, ctx_z = torch.randn(16, 2), torch.randn(16, 2)
    parts = distillation_loss(teacher, student, x, ctx_x, noise, ctx_z, guided=True)
    assert parts.loss.item() < 1e-10 and abs(parts.kl.item()) < 1e-5
    different = distillation_loss(*_pair([1], seed=1), x, ctx_x, noise, ctx_z)
    assert different.loss.item() > 1e-3


def test_distillation_trains_the_student_only():
    sizes = [2, 3]
    teacher, student = _pair(sizes, student_hidden=16)
    for p in teacher.parameters():
        p.requires_grad_(False)
    assert [torch.equal(a.permutation, b.permutation) for a, b in zip(teacher.permutations, student.permutations)] == [
        True,
        True,
    ]
    optimizer = torch.optim.Adam(student.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    ctx = torch.randn(256, 3, generator=gen)
    with torch.no_grad():
        data = teacher.sample(ctx, generator=gen)

    def loss_now():
        noise = torch.randn(256, 5, generator=torch.Generator().manual_seed(1))
        return distillation_loss(teacher, student, data, ctx, noise, ctx, guided=True)

    first = loss_now()
    for _ in range(60):
        noise = torch.randn(256, 5, generator=gen)
        parts = distillation_loss(teacher, student, data, ctx, noise, ctx, beta=0.5, guided=True)
        optimizer.zero_grad()
        parts.loss.backward()
        optimizer.step()
    last = loss_now()
    assert all(p.grad is None for p in teacher.parameters())
    assert last.loss.item() < 0.5 * first.loss.item()
    assert abs(last.kl.item()) < abs(first.kl.item())


def test_unguided_loss_is_the_two_mse_terms():
    teacher, student = _pair([2, 2])
    x, noise, ctx = torch.randn(8, 4), torch.randn(8, 4), torch.randn(8, 3)
    parts = distillation_loss(teacher, student, x, ctx, noise, ctx, beta=0.25, guided=False)
    with torch.no_grad():
        x_term = chi2(student.inverse(teacher.forward(x, ctx).output, ctx).output, x)
        z_term = chi2(teacher.forward(student.inverse(noise, ctx).output, ctx).output, noise)
    torch.testing.assert_close(parts.loss.detach(), 0.75 * z_term + 0.25 * x_term)


def test_guided_made_output_term_sums_every_parameter():
    """The MADE-output chi2 sums all D x (3K - 1) values of a shower (nflows' MADE output is one flat
    vector, run_gamma_2023.py:629-633), not the D features averaged over the 3K - 1 parameters."""
    teacher, student = _pair([2, 3])
    x, noise, ctx = torch.randn(8, 5), torch.randn(8, 5), torch.randn(8, 3)
    parts = distillation_loss(teacher, student, x, ctx, noise, ctx, beta=1.0, guided=True)
    with torch.no_grad():
        data = teacher.forward(x, ctx, return_steps=True, return_params=True)
        back = student.inverse(data.output, ctx, return_steps=True, return_params=True)
        steps = sum(chi2(a, b) for a, b in zip(back.steps, data.steps[::-1]))
        made = sum(((a - b) ** 2).sum(dim=(1, 2)).mean() for a, b in zip(back.params, data.params[::-1]))
    assert data.params[0].shape == (8, 5, 11)
    torch.testing.assert_close(parts.x_term, chi2(back.output, x) + steps + made)
