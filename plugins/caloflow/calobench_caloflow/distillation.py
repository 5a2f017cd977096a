"""Probability density distillation of a MAF teacher into an IAF student (CaloFlow II, arXiv 2110.11377;
the loss of Ian-Pang/caloflow-for-calochallenge run_gamma_2023.py, arXiv 2210.14245).

Two mean-squared-error terms replace the (intractable for a MAF teacher) reverse KL of
van den Oord et al. (arXiv 1711.10433):

* x-space: data x -> teacher (density direction, one pass) -> z; student (sampling direction,
  one pass) z -> x'; term ``chi2(x', x)``.
* z-space: noise z ~ N(0, 1) -> student -> x_s; teacher x_s -> z'; term ``chi2(z', z)``.

"Fully guided" adds, in both terms, the chi2 between every intermediate state of the two chains
(``GuidedCompositeTransform``'s steps: the input, then the state after every block and every
permutation, paired in reverse order, so that the end states count twice as published) and between
the MADE outputs of corresponding blocks. ``chi2(a, b)`` sums the squared difference over the
feature axis and averages over the batch; a MADE output counts all its D x (3K - 1) values as
features (nflows' MADE output is one flat vector per shower, run_gamma_2023.py:629-633, 758-760). The loss is ``(1 - beta) z-term + beta x-term``
with beta = 0.5. The KL divergence ``log q_student(x_s) - log p_teacher(x_s)`` on the student's
samples is computed without gradients for monitoring and model selection only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from calobench_caloflow.flow import ConditionalFlow, FlowPass, standard_normal_log_prob


def chi2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared difference summed over axis 1, averaged over the others (CaloFlow's ``chi2_loss`` on
    (batch, features) tensors)."""
    return (a - b).pow(2).sum(dim=1).mean()


def guided_terms(student: FlowPass, teacher: FlowPass) -> torch.Tensor:
    """chi2 of the student's steps and MADE outputs against the teacher's, matched in reverse order
    (the student runs the chain backwards)."""
    total = student.output.new_zeros(())
    for step, target in zip(student.steps, teacher.steps[::-1]):
        total = total + chi2(step, target)
    for params, target in zip(student.params, teacher.params[::-1]):
        total = total + chi2(params.flatten(1), target.flatten(1))  # all D x (3K - 1) outputs per shower
    return total


@dataclass
class DistillationLoss:
    """The parts of one distillation step."""

    loss: torch.Tensor
    x_term: torch.Tensor
    z_term: torch.Tensor
    kl: torch.Tensor


def distillation_loss(
    teacher: ConditionalFlow,
    student: ConditionalFlow,
    x: torch.Tensor,
    context_x: torch.Tensor,
    noise: torch.Tensor,
    context_z: torch.Tensor,
    beta: float = 0.5,
    guided: bool = True,
) -> DistillationLoss:
    """The CaloFlow II loss on data ``x`` (with its context) and base ``noise`` (with its context).

    The teacher is used as it is (frozen by the caller); gradients flow through it into the student.
    """
    steps = guided
    teacher_data = teacher.forward(x, context_x, return_steps=steps, return_params=steps)
    student_data = student.inverse(teacher_data.output, context_x, return_steps=steps, return_params=steps)
    x_term = chi2(student_data.output, x)
    if guided:
        x_term = x_term + guided_terms(student_data, teacher_data)

    student_samples = student.inverse(noise, context_z, return_steps=steps, return_params=steps)
    teacher_latent = teacher.forward(student_samples.output, context_z, return_steps=steps, return_params=steps)
    z_term = chi2(teacher_latent.output, noise)
    if guided:
        z_term = z_term + guided_terms(student_samples, teacher_latent)

    with torch.no_grad():
        log_student = standard_normal_log_prob(noise) - student_samples.logabsdet
        log_teacher = standard_normal_log_prob(teacher_latent.output) + teacher_latent.logabsdet
        kl = (log_student - log_teacher).mean()
    loss = (1.0 - beta) * z_term + beta * x_term
    return DistillationLoss(loss, x_term.detach(), z_term.detach(), kl)
