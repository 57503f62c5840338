"""The HTTP layer: one module per resource, each a flask-smorest blueprint."""
