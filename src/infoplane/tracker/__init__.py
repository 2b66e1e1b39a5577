"""The tracker: :class:`InformationPlane`, the public face, and the private steps it wires.

One measurement flows through the private modules in this order:

* ``_reader``: the batch (:mod:`infoplane.inputs`) through one eval-mode forward with hooks
  (:mod:`infoplane.capture`) -> X, label ids and the measured activations;
* ``_measurer``: activations -> distances -> widths (:mod:`infoplane.widths`) -> Grams ->
  per-layer estimates and controls (:mod:`infoplane.functional`), one width state per split;
* ``_probe``: a probe set's per-batch rows -> mean and standard error (declared reductions
  across processes);
* ``_recorder``: a :class:`~infoplane.schema.Measurement` -> history records
  (:mod:`infoplane.history`) and logger calls (:mod:`infoplane.loggers`);
* ``_options``: each option's constraint, declared once (:data:`PARAMETER_CONSTRAINTS`) and
  read through :func:`validate_option` by the tracker, the experiment settings and the
  callbacks.
"""

from infoplane.tracker._measurer import DEFAULT_NULL_PERMUTATIONS
from infoplane.tracker._options import PARAMETER_CONSTRAINTS, validate_option
from infoplane.tracker._plane import InformationPlane

__all__ = [
    "DEFAULT_NULL_PERMUTATIONS",
    "PARAMETER_CONSTRAINTS",
    "InformationPlane",
    "validate_option",
]
