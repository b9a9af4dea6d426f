"""vasr: Vietnamese speech-to-text toolkit."""
__version__ = "0.1.0"
