"""The tagger probes (ast, clap, panns, yamnet) live in :mod:`earmark.probes.taggers`, one module per family; this
module keeps the old import path working (``from earmark.probes.tagger import resample``)."""

from .taggers import (
    AVE_LABELS,
    SCORES,
    YAMNET_FRAME,
    AstProbe,
    ClapProbe,
    PannsProbe,
    TaggerConfig,
    TaggerProbe,
    YamnetProbe,
    class_names_for,
    load_ast,
    load_clap,
    load_yamnet,
    read_class_map,
    resample,
)

__all__ = ["AVE_LABELS", "SCORES", "YAMNET_FRAME", "AstProbe", "ClapProbe", "PannsProbe", "TaggerConfig", "TaggerProbe",
           "YamnetProbe", "class_names_for", "load_ast", "load_clap", "load_yamnet", "read_class_map", "resample"]
