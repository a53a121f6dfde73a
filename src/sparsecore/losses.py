"""Knowledge-distillation loss (pure).

Hinton et al. 2015: KL(softmax(t/T) ‖ softmax(s/T)) · T², batch-mean, for
classification; for regression the teacher's outputs are targets of an MSE;
for multi-label each logit is a Bernoulli: BCE(σ(s/T), σ(t/T)) · T².
The total is ``(1 - hardness)·task_loss + hardness·distill_loss`` (SparseML's
``hardness``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float,
                      problem_type: str = "single_label_classification") -> torch.Tensor:
    teacher = teacher.detach().to(student.dtype)
    if student.shape != teacher.shape:
        raise ValueError(f"student output {tuple(student.shape)} and teacher output {tuple(teacher.shape)} differ")
    t = temperature
    if problem_type == "regression":
        return F.mse_loss(student, teacher)
    if problem_type == "multi_label_classification":
        return F.binary_cross_entropy_with_logits(student / t, torch.sigmoid(teacher / t)) * t * t
    if problem_type != "single_label_classification":
        raise ValueError(f"unknown problem_type {problem_type!r}")
    return F.kl_div(F.log_softmax(student / t, dim=-1), F.log_softmax(teacher / t, dim=-1),
                    reduction="batchmean", log_target=True) * t * t


def blend(task_loss: torch.Tensor, distill: torch.Tensor, hardness: float) -> torch.Tensor:
    return (1.0 - hardness) * task_loss + hardness * distill
