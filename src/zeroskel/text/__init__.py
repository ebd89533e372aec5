"""Class texts and sentence encoders.

Nothing is imported here (``import zeroskel.text`` loads no model); use :mod:`.classtexts`
(``class_text_sources``, ``load_class_texts``), :mod:`.encoders` (``SentenceEncoder``) and
:mod:`.cache` (the on-disk embedding cache).
"""
