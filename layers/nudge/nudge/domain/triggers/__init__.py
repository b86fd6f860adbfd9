"""The trigger language: definitions (model), conditions, and the decisions they lead to."""
