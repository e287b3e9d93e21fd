"""The torch side of a spec: the module plan (:mod:`~rfcalc.model.plan`, torch-free), the helper modules every
built or exported model shares (:mod:`~rfcalc.model.modules`), ``build_model`` (:mod:`~rfcalc.model.builder`),
standalone source export (:mod:`~rfcalc.model.export`, torch-free), checkpoints and weights
(:mod:`~rfcalc.model.weights`), the effective receptive field (:mod:`~rfcalc.model.erf`) and the gradient
receptive-field oracle (:mod:`~rfcalc.model.oracle`). Modules that need torch import it at the top; nothing in
the pure core imports them.
"""
