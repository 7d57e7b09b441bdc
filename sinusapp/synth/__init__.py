"""Synthetic sinus CT cohorts: phantoms with disease, written as DICOM, with a clinical table.

Modules
-------
- :mod:`sinusapp.synth.phantom` — procedural head CT in HU with sinus disease, lesion mask and
  sinus label map (:data:`~sinusapp.synth.phantom.SINUS_LABELS`); :func:`render_phantom`.
- :mod:`sinusapp.synth.cohort` — Table-1 cohorts with a latent type-2 inflammation, each
  case's true recurrence probability and the oracle AUCs; :func:`sample_cohort`.
- :mod:`sinusapp.synth.dicomio` — CT series, DICOM SEG and NIfTI writers (deterministic).
- :mod:`sinusapp.synth.write` — cases and cohorts in the training-dataset format;
  :func:`~sinusapp.synth.write.render_case` renders a case in memory (training on the fly).
- :mod:`sinusapp.synth.demo` — the bundled demo study (``python -m sinusapp.synth.demo``).
- ``sinusapp synth`` itself is :mod:`sinusapp.cli.synth`.

No torch here: the generator runs wherever numpy / scipy / pydicom run.
"""
