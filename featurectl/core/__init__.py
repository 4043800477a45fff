"""The pure core: definitions model, canonical form, diff, rules, version policy, plan.

Nothing here performs I/O, reads the clock or imports an adapter library; a test
(tests/unit/test_layering.py) keeps it that way.
"""
