"""waha-tui: WhatsApp campaigns through a self-hosted WAHA server, from the terminal."""

__version__ = "0.1.0"
