"""Running the grid: cells and their records (`runner`, `records`), executors (local, Ray),
hyper-parameter studies (`tune`) and experiment files (`experiment`)."""
