"""The spec as users write it: YAML with located nodes (:mod:`~rfcalc.spec.source`), the pydantic models
(:mod:`~rfcalc.spec.models`; each op's own model lives in :mod:`rfcalc.ops`), block / repeat / separable
expansion into the validated graph (:mod:`~rfcalc.spec.expand`, :mod:`~rfcalc.spec.graph`), the one-line error
messages (:mod:`~rfcalc.spec.messages`), the `train:` section's schema (:mod:`~rfcalc.spec.train`), the JSON
Schema (:mod:`~rfcalc.spec.schema`) and a seeded random-spec generator for property tests
(:mod:`~rfcalc.spec.random_specs`). Torch-free.
"""
