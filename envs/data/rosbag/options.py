"""What an import needs that a bag cannot tell (`ImportOptions`), shared by the modules of
`envs.data.rosbag`."""

from __future__ import annotations

from dataclasses import dataclass, field

from envs.data.rosbag.bag import Topics


@dataclass(frozen=True)
class ImportOptions:
    """What the bag cannot tell. Units: Hz, seconds, the action's units (m, rad, opening)."""

    env_id: str
    """Env id written into the contract; a registered one (``wm/PandaReach-v0``) brings its
    bounds, workspace and camera, anything else (``ros/my_cell``) needs the action bounds."""
    topics: Topics = field(default_factory=Topics)
    control_hz: float | None = None
    """Commands per second; None = the median command rate, rounded to 0.1 Hz."""
    action_low: tuple[float, ...] | None = None
    action_high: tuple[float, ...] | None = None
    workspace_low: tuple[float, ...] = ()
    workspace_high: tuple[float, ...] = ()
    image_size: int | None = None
    """Side of the stored square frames; None = the env's, else the camera's (if square)."""
    gap_periods: float = 3.0
    """Without an episode marker topic, a pause between commands longer than this many
    control periods starts a new episode."""
    max_frame_age_s: float | None = None
    """An observation whose newest frame is older than this is counted late; None = 1 period."""
    clip_actions: bool = False
    """Clip commands outside the action bounds (counted) instead of refusing the bag."""
    clock: str = "header"
    """Frame times: ``header`` (the camera's stamps) or ``receive`` (the bag's own timestamps,
    as for states and commands: arrival times from ``ros2 bag record``, send times from
    ``wm-ros-record``; for a camera whose clock is not synced with the recorder's)."""

    def __post_init__(self) -> None:
        if self.clock not in ("header", "receive"):
            raise ValueError(f"clock={self.clock!r}: 'header' or 'receive'")
        if self.gap_periods <= 1:
            raise ValueError(f"gap_periods={self.gap_periods}: must be > 1 control period")
        if self.control_hz is not None and not self.control_hz > 0:
            raise ValueError(f"control_hz={self.control_hz}: must be > 0")
        if self.image_size is not None and not 8 <= self.image_size <= 1024:
            raise ValueError(f"image_size={self.image_size}: want 8 to 1024 pixels")
        if (self.action_low is None) != (self.action_high is None):
            raise ValueError("give both action_low and action_high, or neither")
