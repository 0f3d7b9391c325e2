"""Synthetic interaction data: generators (a GAN and non-GAN baselines), fidelity, privacy, a report.

``gan4rec synthesize`` (:mod:`gan4rec.synth.command`) fits a generator on real users, samples synthetic
users over the same items, and measures how faithful (:mod:`~gan4rec.synth.fidelity`) and how private
(:mod:`~gan4rec.synth.privacy`) they are. Nothing heavy is imported here.
"""

__all__: list[str] = []
