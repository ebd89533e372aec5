"""Skeleton encoders: ST-GCN (PGFA slim / standard) and Shift-GCN, plus their registry."""
from .registry import EncoderCard, build_encoder, list_encoders, make_card
from .shiftgcn import SHIFTGCN_PRESETS, ShiftGCN
from .stgcn import STGCN, STGCN_PRESETS
from .temporal_shift import AdaptiveTemporalShift, adaptive_temporal_shift, shifted_length

__all__ = ["STGCN", "ShiftGCN", "STGCN_PRESETS", "SHIFTGCN_PRESETS", "AdaptiveTemporalShift",
           "adaptive_temporal_shift", "shifted_length", "EncoderCard", "build_encoder",
           "list_encoders", "make_card"]
