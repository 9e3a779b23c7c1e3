"""The realtime engine: Node, Hub, Session, the protocol codec and backend contracts."""
