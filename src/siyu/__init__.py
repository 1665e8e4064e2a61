"""siyu (私域): a self-hosted private-domain operations platform."""

__version__ = "0.1.0"
