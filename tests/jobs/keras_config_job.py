"""Keras layers and a callback whose configs must be the same traced and untraced: ioprof's
hooks on Layer/Callback construction must not change what Keras sees (a wrapper on
Layer.__init__ once broke layers that inherit it)."""
import json

import keras


class Plain(keras.layers.Layer):  # inherits Layer.__init__: Keras reads its argument spec
    def call(self, x):
        return x


class Scaled(keras.layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor


class Noop(keras.callbacks.Callback):
    pass


model = keras.Sequential([keras.layers.Input((4,)), keras.layers.Dense(3, name="d"),
                          Plain(name="p"), Scaled(3.0, name="s")])
configs = {layer.name: layer.get_config() for layer in model.layers}
configs["noop"] = type(Noop()).__name__
print(json.dumps(configs, sort_keys=True, default=str))
