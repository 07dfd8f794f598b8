"""The Textual TUI: `chat-client`."""
