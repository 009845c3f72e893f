"""SynthAVE: AVE-shaped clips generated here, where resolution matters and the sound says when to look.

Each clip copies the label structure of a real AVE row (class, event start/end; the split's rows are
sampled from the shipped AVE statistics, exactly the release's multiset at full size). During event seconds
a **small class glyph** (a striped disc about 6 % of the frame wide: 4 colour pairs × 7 stripe orientations
= 28 classes) sits in a photographic scene (scikit-image's CC0/public-domain samples) under a moving camera
with clutter; background seconds carry distractor discs of the same colours with unoriented texture, and
sometimes distractor sounds. Each clip draws its stripe period (2.5–8 px at 448 px by default), so no one
picture size or filter wavelength reads every clip: at 112 px a glyph is a coloured blob (the coarsest keep a
little orientation), at 224 px the coarse-striped glyphs are readable and the fine ones alias, at 448 px all
are plain — the gap anchoring can recover. The event sound is one of 28 synthetic sounds (7 families × 4
registers, jittered per clip) ``snr_db`` above a room-tone background, shifted by ``av_offset_s``, or absent
for silent events; by default it is drawn whatever the class, so the sound says *when* to look and the
picture says *what*. :data:`LEGACY_SETTINGS` (3 px stripes, a sound per class) make the generator from before
these two draws existed, byte for byte.

Everything is a pure function of (config, clip index): the same settings give the same files.


The package, by job: :mod:`.spec` (settings and each clip's truth), :mod:`.clips` (which clips, from AVE's label
statistics), :mod:`.sound` (event and distractor sounds, the soundtrack), :mod:`.picture` (camera, glyphs,
frames) and :mod:`.folder` (the writer and its manifest).
"""

from .clips import ave_label_stats, classes, clip_spec, label_stats_from_rows, plan_clips, sample_rows, split_sizes
from .folder import MANIFEST, make_synthave
from .picture import (
    BACKGROUNDS,
    COLOURS,
    GLYPH_FRACTION,
    N_ORIENTATIONS,
    camera,
    clip_frames,
    distractor,
    glyph,
    paste,
)
from .sound import BACKGROUND_DB, N_SOUNDS, SAMPLE_RATE, clip_audio, distractor_sound, event_sound
from .spec import LEGACY_SETTINGS, MAX_STRIPE_PERIOD, MIN_STRIPE_PERIOD, ClipSpec, SynthConfig

__all__ = ["BACKGROUNDS", "BACKGROUND_DB", "COLOURS", "GLYPH_FRACTION", "LEGACY_SETTINGS", "MANIFEST",
           "MAX_STRIPE_PERIOD", "MIN_STRIPE_PERIOD", "N_ORIENTATIONS", "N_SOUNDS", "SAMPLE_RATE", "ClipSpec",
           "SynthConfig", "ave_label_stats", "camera", "classes", "clip_audio", "clip_frames", "clip_spec",
           "distractor", "distractor_sound", "event_sound", "glyph", "label_stats_from_rows", "make_synthave",
           "paste", "plan_clips", "sample_rows", "split_sizes"]
