"""ROS 2 bridge: the planning agent as a ROS 2 node, and a simulated robot to test it against.

This is the only package that imports ``rclpy``. The pure logic (image decoding, command
clamping, the watchdog) lives in :mod:`agent.ros.safety`, which imports neither ``rclpy``
nor any message package, so it is unit-tested without ROS and reused by the benchmark.
"""
