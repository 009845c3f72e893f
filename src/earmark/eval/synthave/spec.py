"""What a SynthAVE folder is made from: its settings (:class:`SynthConfig`, saved in ``synthave.json``) and each
clip's truth (:class:`ClipSpec`)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from ...errors import ConfigError

MIN_STRIPE_PERIOD, MAX_STRIPE_PERIOD = 2.0, 12.0
"""The stripe periods a glyph can have, pixels at 448 px: below 2 px the stripes alias even at 448 (nothing
could read them), above 12 px the 29 px glyph shows fewer than 2.5 periods (a pattern, not a texture)."""


LEGACY_SETTINGS: dict[str, Any] = {"stripe_period_min": 3.0, "stripe_period_max": 3.0, "class_sound_fraction": 1.0}
"""The settings SynthAVE had before they existed (every SynthAVE folder and number made until then): every glyph
striped at 3 px (1.5 px at 224: aliased; 0.75 px at 112: averaged away), and every class its own sound. A
folder whose stored settings lack these keys was made with these values (:func:`make_synthave`)."""


@dataclass(frozen=True)
class SynthConfig:
    """Everything that decides a SynthAVE folder's content (saved in its ``synthave.json``)."""

    snr_db: float = 10.0
    """Event sound level over the room tone (RMS over the event)."""
    av_offset_s: float = 0.0
    """Picture time minus sound time (> 0: the sound comes early), as ``earmark index --offset``."""
    silent_event_fraction: float = 0.0
    """Fraction of clips whose event is visible but makes no sound."""
    distractor_rate: float = 0.3
    """Per background second: chance of a distractor disc; half of it: chance of a distractor sound."""
    event_motion: float = 0.0
    """> 0: every event second also shows a large moving disc this fraction of the frame wide (class-blind: it
    says *that* something happens, not what), so cheap visual probes can find events, silent ones included —
    the variant that tests the hybrid and transfer probes. 0 (default): events are visible only as small glyphs."""
    stripe_period_min: float = 2.5
    """Shortest glyph stripe period, pixels at 448 px (scaled with ``size``). Each clip draws its period
    log-uniformly (the same chance per octave) in [``stripe_period_min``, ``stripe_period_max``]; its distractor
    discs use the same scale. The default 2.5–8 px is 1.25–4 px at 224 and 0.6–2 px at 112: the finest ~40 %
    of clips (under 4 px at 448: under the 2 px Nyquist limit at 224) need 448, the coarsest ~40 % (5 px and
    up) are readable at 224 too, and at 112 only the coarsest keep some orientation — resolution matters for
    some clips and not others, as in real video, and no fixed-wavelength filter is tuned to all of them.
    Equal min and max: one period for every clip."""
    stripe_period_max: float = 8.0
    """Longest glyph stripe period, pixels at 448 px (see ``stripe_period_min``)."""
    class_sound_fraction: float = 0.0
    """Fraction of clips whose event plays their class's own sound (of the 28: class ``c`` has sound ``c``); the
    others play one of the 28 dealt at random whatever the class (each run of 28 clips of a split hears each
    sound once). 0 (default): the sound is independent of the class — it says *when*, never *what*, so audio
    features alone are at chance on the class and a strategy must read the glyph; 1: every class has its own
    sound (the sound names the class: :data:`LEGACY_SETTINGS`)."""
    duration_s: int = 10
    """Clip length; 60 or 300 make sparse long-video variants (the AVE event placed at a random second)."""
    n: int | None = None
    """Clips in all (split sizes scaled from AVE's 3339/402/402); None: the full sizes."""
    seed: int = 0
    size: int = 448
    fps: float = 2.0
    crf: int = 26

    def check(self) -> None:
        if not 0.0 <= self.silent_event_fraction <= 1.0:
            raise ConfigError(f"silent_event_fraction must be in [0, 1], got {self.silent_event_fraction}")
        if not 0.0 <= self.distractor_rate <= 1.0:
            raise ConfigError(f"distractor_rate must be in [0, 1], got {self.distractor_rate}")
        if not 0.0 <= self.event_motion <= 0.5:
            raise ConfigError(f"event_motion must be in [0, 0.5], got {self.event_motion}")
        for name in ("stripe_period_min", "stripe_period_max"):
            if not MIN_STRIPE_PERIOD <= getattr(self, name) <= MAX_STRIPE_PERIOD:
                raise ConfigError(f"{name} must be in [{MIN_STRIPE_PERIOD:g}, {MAX_STRIPE_PERIOD:g}] px at 448 px, "
                                  f"got {getattr(self, name)}")
        if self.stripe_period_min > self.stripe_period_max:
            raise ConfigError(f"stripe_period_min must be <= stripe_period_max, got {self.stripe_period_min} > "
                              f"{self.stripe_period_max}")
        if not 0.0 <= self.class_sound_fraction <= 1.0:
            raise ConfigError(f"class_sound_fraction must be in [0, 1], got {self.class_sound_fraction}")
        if self.duration_s < 10:
            raise ConfigError(f"duration_s must be >= 10 (AVE clips are 10 s), got {self.duration_s}")
        if abs(self.av_offset_s) >= self.duration_s:
            raise ConfigError(f"av_offset_s must be shorter than the clip, got {self.av_offset_s}")
        if self.n is not None and self.n < 3:
            raise ConfigError(f"n must be >= 3 (one clip per split at least), got {self.n}")
        if self.size < 112 or self.fps <= 0:
            raise ConfigError(f"size must be >= 112 and fps > 0, got {self.size} and {self.fps}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SynthConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class ClipSpec:
    """One generated clip's truth: what is seen and heard when (seconds, ``[start, end)``)."""

    video_id: str
    split: str
    category: str
    class_index: int
    start_s: int
    end_s: int
    silent: bool
    sound_start_s: float
    sound_end_s: float
    distractor_seconds: tuple[int, ...]
    distractor_sound_seconds: tuple[int, ...]
    background: str
    stripe_period: float
    """The glyph's stripe period, pixels at 448 px."""
    sound: int
    """The event sound (of :data:`N_SOUNDS`): ``class_index`` when the clip plays its class's own sound."""
