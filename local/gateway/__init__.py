"""The local API gateway: Istio's edge semantics from the same YAML."""
