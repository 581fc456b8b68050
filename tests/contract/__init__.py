"""The contract test suite: checks every registered model must pass (see checks.py)."""
