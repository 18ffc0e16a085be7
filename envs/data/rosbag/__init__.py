"""rosbag2 bags from a ROS 2 robot (MCAP or sqlite3) into training datasets, without a ROS
install (`rosbags`): ``python -m envs.data.rosbag info|import``. The topic contract, the episode
and resampling rules and the report are in docs/ros.md, "From a robot back to training"."""

from envs.data.rosbag.bag import RosbagError, Topics, open_bag
from envs.data.rosbag.convert import ImportReport, import_bag
from envs.data.rosbag.options import ImportOptions

__all__ = ["ImportOptions", "ImportReport", "RosbagError", "Topics", "import_bag", "open_bag"]
