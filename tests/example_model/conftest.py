"""Not collected: importing ``model.py`` or ``fixed_fee.py`` registers an example model for the
whole session; the tests that use them register them only while they run (tests/test_contract.py,
tests/test_example_model.py)."""

collect_ignore = ["__init__.py", "model.py", "spec.py", "fixed_fee.py"]
