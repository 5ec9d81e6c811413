"""The application: configuration, the daemon that wires the layers, the command line."""
