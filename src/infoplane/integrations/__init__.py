"""Callbacks for training frameworks; each module imports its framework only when imported.

* :mod:`infoplane.integrations.lightning`: ``InformationPlaneCallback`` for PyTorch Lightning's
  ``Trainer`` (``pip install lightning``);
* :mod:`infoplane.integrations.transformers`: ``InformationPlaneCallback`` for Hugging Face's
  ``Trainer`` (``pip install transformers``).
"""
