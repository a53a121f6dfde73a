"""An index over an ONNX graph, shared by the QDQ → integer rewrite (export) and the int8 loader (deploy)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from sparsecore.onnx_proto import to_array


class GraphIndex:
    """Producers, consumers, initializers and Identity aliases of an ONNX graph, indexed once (O(nodes + edges))."""

    def __init__(self, model) -> None:
        """``model``: an ``onnx.ModelProto`` or a :func:`sparsecore.onnx_proto.load` result."""
        self.model, self.graph = model, model.graph
        self.inits = {i.name: i for i in self.graph.initializer}
        self.producer = {o: n for n in self.graph.node for o in n.output}
        self.consumers: dict[str, list] = defaultdict(list)
        for n in self.graph.node:
            for i in n.input:
                self.consumers[i].append(n)
        # the exporter stores identical tensors once and names the copies through Identity nodes
        self.alias = {n.output[0]: n.input[0] for n in self.graph.node if n.op_type == "Identity" and n.input}

    def resolve(self, name: str) -> str | None:
        """The initializer ``name`` refers to, through Identity aliases; None when it is not a constant."""
        for _ in range(16):
            if name in self.inits or name not in self.alias:
                break
            name = self.alias[name]
        return name if name in self.inits else None

    def const(self, name: str) -> np.ndarray | None:
        return to_array(self.inits[name]) if name in self.inits else None

    def add_init(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.graph.initializer.append(numpy_helper.from_array(array, name))
        self.inits[name] = self.graph.initializer[-1]
        return name

    def dq(self, tensor: str):
        node = self.producer.get(tensor)
        return node if node is not None and node.op_type == "DequantizeLinear" else None
