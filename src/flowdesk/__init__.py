"""flowdesk: self-hosted flow automation with Interactive Flows."""

__version__ = "0.1.0"
