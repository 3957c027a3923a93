"""Evaluation: scoring and the ranking / rating protocols (`evaluate`), metrics as pure
functions over arrays (`metrics`), and the statistics behind every claimed difference
(`stats`)."""
