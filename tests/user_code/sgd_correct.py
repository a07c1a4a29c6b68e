"""SGD with momentum in torch's form, torch-like step() style."""



class SGD:
    """Torch-like: constructed with params (objects with .data and .grad), step() updates them."""

    def __init__(self, params, lr=0.001, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        self.params = list(params)
        self.param_groups = [dict(lr=lr)]
        self.momentum = momentum
        self.dampening = dampening
        self.weight_decay = weight_decay
        self.nesterov = nesterov
        self.buffers = [None] * len(self.params)

    def step(self):
        lr = self.param_groups[0]["lr"]
        for i, p in enumerate(self.params):
            g = p.grad + self.weight_decay * p.data
            if self.momentum:
                if self.buffers[i] is None:
                    self.buffers[i] = g.copy()
                else:
                    self.buffers[i] = self.momentum * self.buffers[i] + (1 - self.dampening) * g
                g = g + self.momentum * self.buffers[i] if self.nesterov else self.buffers[i]
            p.data -= lr * g
