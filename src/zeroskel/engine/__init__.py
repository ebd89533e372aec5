"""Training runs: :mod:`.config` (presets, ``--set`` overrides), :mod:`.runs` (run folders,
``train``, ``resume_run``, ``evaluate_run``), :mod:`.trainer`, :mod:`.pretrain`, :mod:`.extract`,
:mod:`.benchmark` and :mod:`.distributed` (torchrun). Nothing is imported here.
"""
