"""The compiled plan: pure, frozen and hashable. No Beam, no I/O.

A recipe compiles to a :class:`Plan` that can be printed, hashed and diffed without a runner
(the rechunker pattern: plan first, then execute on any engine).
"""

from recipes_core.plan.chunks import ChunkGrid, Piece, check_shards_align, split_region
from recipes_core.plan.pattern import FilePattern, PatternDim, parse_placeholders
from recipes_core.plan.plan import Plan, compile_recipe

__all__ = [
    "ChunkGrid",
    "FilePattern",
    "PatternDim",
    "Piece",
    "Plan",
    "check_shards_align",
    "compile_recipe",
    "parse_placeholders",
    "split_region",
]
