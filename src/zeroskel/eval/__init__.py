"""ZSL / GZSL evaluation: :mod:`.metrics` (``top1``, ``per_class_accuracy``, ``gzsl_scores``,
``harmonic_mean``; accuracies in percent), :mod:`.gzsl` (``zsl_accuracy``, ``gzsl_eval``,
``choose_threshold`` on (N, K) score matrices) and :mod:`.protocol` (``evaluate_method``,
``evaluate_named``: the held-out protocol of ``zeroskel eval-features``). Input errors are
:class:`~zeroskel.errors.DataError` / :class:`~zeroskel.errors.ConfigError`.
"""
