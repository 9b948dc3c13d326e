"""jat-codecs: the modality codecs of JAT (continuous, discrete, image, vit, text), registered as a jat plugin."""

__version__ = "0.1.0"
