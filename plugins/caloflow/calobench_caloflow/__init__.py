"""CaloFlow for calobench: a MAF teacher and an IAF student.

Registers two generators through the ``calobench_generators`` hook:

* ``caloflow-teacher`` -- CaloFlow I (Krause & Shih, arXiv 2106.05285; DS1: Krause, Pang, Shih,
  arXiv 2210.14245): Flow I for the layer energies, a MAF-RQS Flow II for the normalized voxels.
* ``caloflow-student`` -- CaloFlow II (arXiv 2110.11377): an IAF-RQS Flow II distilled from a
  trained teacher (``--set teacher_checkpoint=DIR``), sampling with one network pass per block.

The flows are plain torch modules (made.py, splines.py, autoregressive.py, permutations.py,
flow.py) usable on their own.
"""

from __future__ import annotations

from calobench.hookspecs import hookimpl

__version__ = "0.1.0"


@hookimpl
def calobench_generators() -> list:
    from calobench_caloflow.student import CaloFlowStudent
    from calobench_caloflow.teacher import CaloFlowTeacher

    return [CaloFlowTeacher, CaloFlowStudent]
