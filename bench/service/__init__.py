"""Recommendations as a service: `python -m bench serve RUN_DIR` answers HTTP requests for
known users, new users folded in from their ratings, similar items and title search, and
serves a page that compares two models on one person (`app.py`), over the models a run
trained (`served.py`). `load.py` measures it."""
