"""Adam and SGD whose update of each variable is one TensorFlow kernel, for the TensorFlow backend.

Keras' own Adam builds its update of each variable from about twenty small ops (casts, powers, reads of the step
count and the rate, the moment updates). Tracing the training step builds them all into the graph, once per
variable: for a ResNet-56 (167 trainable variables) that was half of its first step, 19.6 s of which 10 s were
Adam's (2-core AVX2 EPYC). These classes compute what depends only on the step once per step and hand each
variable to TensorFlow's fused kernels (``ResourceApplyAdam``, ``ResourceApplyKerasMomentum``,
``ResourceApplyGradientDescent``), which compute Keras' formulas: the first step traces in 10.9 s, and the steps
after it take the same time. They are Keras' optimizers in everything else (hyper-parameters, weight decay,
clipping, loss scaling, their variables' names and order, so checkpoints do not tell them apart) and serialize
under their own names. ``build_optimizer`` uses them only where they apply: TensorFlow outside a distribution
strategy (whose mirrored variables the kernels do not take).
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import keras


def fused_updates_apply() -> bool:
    """True where these optimizers may replace Keras' own: the TensorFlow backend outside a distribution strategy."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return not tf.distribute.has_strategy()


class _OncePerStep:
    """Makes what an update needs that depends only on the step once per ``apply`` and dtype, not per variable:
    ``per_step(dtype, make)`` inside ``update_step``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._step_scalars: Optional[Dict[Any, Any]] = None

    def apply(self, grads, trainable_variables=None):
        self._step_scalars = {}
        try:
            return super().apply(grads, trainable_variables)
        finally:
            self._step_scalars = None

    def per_step(self, dtype: Any, make: Any) -> Any:
        if self._step_scalars is None:  # an update outside apply (none in Keras): nothing to share
            return make()
        if dtype not in self._step_scalars:
            self._step_scalars[dtype] = make()
        return self._step_scalars[dtype]


@keras.saving.register_keras_serializable(package="resnet_lab")
class FusedAdam(_OncePerStep, keras.optimizers.Adam):
    """Keras' Adam (and, with ``weight_decay``, AdamW), each variable updated by ``ResourceApplyAdam``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.amsgrad:
            raise ValueError("FusedAdam has no AMSGrad: use keras.optimizers.Adam(amsgrad=True)")
        self._slots: Dict[int, Any] = {}

    def build(self, var_list):
        if self.built:
            return
        # The base optimizer's variables (step count, rate), then the moments made exactly as Adam makes them:
        # the same names, interleaved in the same order.
        keras.optimizers.Optimizer.build(self, var_list)
        momentums, velocities = self.add_optimizer_variables(var_list, ["momentum", "velocity"])
        self._slots = {id(v.value): (m, s) for v, m, s in zip(var_list, momentums, velocities)}

    def update_step(self, gradient, variable, learning_rate):
        import tensorflow as tf

        dtype = variable.dtype

        def scalars():
            step = tf.cast(self.iterations + 1, dtype)
            beta_1, beta_2 = tf.constant(self.beta_1, dtype), tf.constant(self.beta_2, dtype)
            return (tf.pow(beta_1, step), tf.pow(beta_2, step), tf.cast(learning_rate, dtype), beta_1, beta_2,
                    tf.constant(self.epsilon, dtype))

        beta_1_power, beta_2_power, rate, beta_1, beta_2, epsilon = self.per_step(dtype, scalars)
        momentum, velocity = self._slots[id(variable)]
        tf.raw_ops.ResourceApplyAdam(var=variable.handle, m=momentum.value.handle, v=velocity.value.handle,
                                     beta1_power=beta_1_power, beta2_power=beta_2_power, lr=rate, beta1=beta_1,
                                     beta2=beta_2, epsilon=epsilon, grad=tf.cast(gradient, dtype))


@keras.saving.register_keras_serializable(package="resnet_lab")
class FusedSGD(_OncePerStep, keras.optimizers.SGD):
    """Keras' SGD, with or without (Nesterov) momentum, each variable updated by one kernel."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slots: Dict[int, Any] = {}

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        if self.momentum != 0:
            self._slots = {id(v.value): m for v, m in zip(variables, self.momentums)}

    def update_step(self, gradient, variable, learning_rate):
        import tensorflow as tf

        dtype = variable.dtype
        rate, momentum = self.per_step(
            dtype, lambda: (tf.cast(learning_rate, dtype), tf.constant(self.momentum, dtype)))
        gradient = tf.cast(gradient, dtype)
        if self.momentum == 0:
            tf.raw_ops.ResourceApplyGradientDescent(var=variable.handle, alpha=rate, delta=gradient)
            return
        # accumulation = accumulation * momentum - rate * gradient; the variable gains it (Nesterov: looks ahead)
        tf.raw_ops.ResourceApplyKerasMomentum(var=variable.handle, accum=self._slots[id(variable)].value.handle,
                                              lr=rate, grad=gradient, momentum=momentum,
                                              use_nesterov=bool(self.nesterov))
