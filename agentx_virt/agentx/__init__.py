"""The AgentX protocol (RFC 2741): sans-IO codec, served store, and the session driver."""
