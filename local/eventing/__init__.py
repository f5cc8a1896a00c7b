"""The local Knative Eventing Kafka data plane, driven by the manifests under `eventing/`."""
