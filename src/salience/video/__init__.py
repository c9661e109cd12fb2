"""Video and real time: the dynamic Itti model, attention over time, and streams of frames."""
