"""Skeleton data: dataset registry and readers, joint layouts, transforms, splits, features.

Nothing is imported here (``import zeroskel.data`` stays cheap); use the modules:
:mod:`.registry` (``DATASETS``, ``get_spec``, ``read_dataset``), :mod:`.splits` (``list_splits``,
``get_split``, ``load_split_file``), :mod:`.cache` (``prepare``), :mod:`.layouts`
(``get_layout``, ``map_layout``), :mod:`.transforms` (``build_pipeline``), :mod:`.features`
(``FeatureSet``, ``load_features``, ``load_token_bank``) and :mod:`.dataset` (``SkeletonDataset``).
"""
