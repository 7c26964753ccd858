"""Reading a model's raw output: reasoning (<think>), tool calls (tool_calls/, one parser
per format), forced tool calls, all as OutputEvents (events.py)."""
