"""Not collected: importing ``model.py`` registers the example model for the whole session;
the tests that use it register it only while they run (tests/test_contract.py,
tests/test_example_model.py)."""

collect_ignore = ["__init__.py", "model.py", "spec.py"]
