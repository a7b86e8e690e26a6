"""ioprof: why is this TensorFlow training job slow? Read, decode, transfer or compute."""

__version__ = "0.1.0"
