"""``losstopo demo``: the whole story on scikit-learn's digits, in under three minutes on 2 cores.

:mod:`.run` trains the models and writes the random-plane landscapes, their topology, ParaView
bundles and the report; :mod:`.projectors` adds the landscapes along the trajectories (PCA,
auto-encoder, a global one over two runs) and the projectors' fidelity tables.
"""

from .run import run_demo

__all__ = ["run_demo"]
