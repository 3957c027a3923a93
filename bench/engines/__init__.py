"""Training engines: the fit loop with early stopping (`train`), the batched and per-user
engines, their optimisers, the classic notebooks' loop, precision and device plumbing."""
